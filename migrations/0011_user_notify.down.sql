DROP TRIGGER IF EXISTS roles_notify_truncate ON roles;
DROP TRIGGER IF EXISTS roles_notify ON roles;
DROP TRIGGER IF EXISTS user_roles_notify_truncate ON user_roles;
DROP TRIGGER IF EXISTS user_roles_notify ON user_roles;
DROP TRIGGER IF EXISTS users_notify_truncate ON users;
DROP TRIGGER IF EXISTS users_notify ON users;
DROP FUNCTION IF EXISTS users_notify();
