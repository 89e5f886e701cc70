-- Cross-replica invalidation of the client cache (storage/fositestore,
-- clientcache.go): every change to oauth2_clients is announced on channel
-- authd_oauth2_clients after it commits (NOTIFY is transactional), with the
-- client id as payload. An empty payload means "drop everything": TRUNCATE,
-- or an id too long for a notification payload.

CREATE FUNCTION oauth2_clients_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('authd_oauth2_clients', '');
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('authd_oauth2_clients', CASE WHEN octet_length(OLD.id) <= 1000 THEN OLD.id ELSE '' END);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id THEN
        PERFORM pg_notify('authd_oauth2_clients', CASE WHEN octet_length(NEW.id) <= 1000 THEN NEW.id ELSE '' END);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER oauth2_clients_notify
    AFTER UPDATE OR DELETE ON oauth2_clients
    FOR EACH ROW EXECUTE FUNCTION oauth2_clients_notify();

CREATE TRIGGER oauth2_clients_notify_truncate
    AFTER TRUNCATE ON oauth2_clients
    FOR EACH STATEMENT EXECUTE FUNCTION oauth2_clients_notify();
