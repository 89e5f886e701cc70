DROP TABLE browser_sessions;
DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE users;
