-- Only live refresh tokens are looked up by user: revocation by user,
-- browser session or user and client finds a user's live families through
-- their one active token each (fositestore revokeWhere). A family without an
-- active token is already dead: nothing in it rotates, and its saved
-- responses are never replayed (a replay needs the successor active). So the
-- subject index holds active rows only, and the rotation's rewrite of the
-- used row, which is not a HOT update, no longer adds an entry to it.
DROP INDEX oauth2_refresh_subject_idx;
CREATE INDEX oauth2_refresh_subject_active_idx ON oauth2_refresh (subject) WHERE active;
