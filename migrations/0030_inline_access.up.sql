-- A refresh rotation stores the access token it issues in the new refresh
-- token's row instead of a row of its own (issue 23: fewer rows and index
-- entries per rotation). Both tokens carry the same request and session; the
-- row already names the access token (access_token_signature). With
-- access_inline set, that access token has no oauth2_access row and is live
-- exactly while the refresh row is active and access_inline stays set: the
-- rotation, every family revocation and every revocation by user, session or
-- client deactivate the row, and revoking the access token alone clears
-- access_inline. Introspection and bearer checks find it through this index,
-- which holds live inline access tokens only.
ALTER TABLE oauth2_refresh ADD COLUMN access_inline boolean NOT NULL DEFAULT false;
CREATE INDEX oauth2_refresh_inline_access_idx ON oauth2_refresh (access_token_signature)
    WHERE active AND access_inline;
