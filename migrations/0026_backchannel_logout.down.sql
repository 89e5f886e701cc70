ALTER TABLE oauth2_clients
    DROP COLUMN IF EXISTS backchannel_logout_session_required,
    DROP COLUMN IF EXISTS backchannel_logout_uri;
DROP TABLE IF EXISTS oauth2_session_clients;
ALTER TABLE browser_sessions DROP COLUMN IF EXISTS sid;
