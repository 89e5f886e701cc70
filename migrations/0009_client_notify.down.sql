DROP TRIGGER IF EXISTS oauth2_clients_notify_truncate ON oauth2_clients;
DROP TRIGGER IF EXISTS oauth2_clients_notify ON oauth2_clients;
DROP FUNCTION IF EXISTS oauth2_clients_notify();
