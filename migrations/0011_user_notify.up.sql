-- Cross-replica invalidation of the users/roles cache (accounts,
-- usercache.go): every change to a user's disabled flag or roles, and every
-- deletion of a user, is announced on channel authd_users after it commits
-- (NOTIFY is transactional; identical payloads in one transaction are sent
-- once), with the user id as payload. An empty payload means "drop
-- everything": TRUNCATE, or a change to the roles table.
--
-- New users need no announcement: the cache never remembers an absent user.
-- Deleting or renaming a role that someone holds is refused by
-- user_roles_role_fkey, so roles changes alter nobody's roles today; they are
-- announced anyway, so that a later ON DELETE/UPDATE CASCADE cannot silently
-- leave stale roles in a cache.

CREATE FUNCTION users_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' OR TG_TABLE_NAME = 'roles' THEN
        PERFORM pg_notify('authd_users', '');
    ELSIF TG_TABLE_NAME = 'user_roles' THEN
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('authd_users', OLD.user_id::text);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('authd_users', NEW.user_id::text);
        END IF;
    ELSE -- users
        PERFORM pg_notify('authd_users', OLD.id::text);
        IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
            PERFORM pg_notify('authd_users', NEW.id::text);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- Only the columns the cache holds: password, email and profile updates
-- (logins re-hashing, verification) announce nothing.
CREATE TRIGGER users_notify
    AFTER UPDATE OF id, disabled OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_notify();

CREATE TRIGGER users_notify_truncate
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION users_notify();

CREATE TRIGGER user_roles_notify
    AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION users_notify();

CREATE TRIGGER user_roles_notify_truncate
    AFTER TRUNCATE ON user_roles
    FOR EACH STATEMENT EXECUTE FUNCTION users_notify();

CREATE TRIGGER roles_notify
    AFTER UPDATE OF name OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION users_notify();

CREATE TRIGGER roles_notify_truncate
    AFTER TRUNCATE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION users_notify();
