DROP INDEX IF EXISTS oauth2_refresh_active_family_idx;
DROP INDEX IF EXISTS oauth2_refresh_expires_at_idx;
CREATE INDEX oauth2_refresh_expires_at_idx ON oauth2_refresh (expires_at);
DROP INDEX IF EXISTS oauth2_access_expires_at_idx;
CREATE INDEX oauth2_access_expires_at_idx ON oauth2_access (expires_at);
