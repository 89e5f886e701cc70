-- Lighter token rows (issue 7): every index is one more insertion per token.
--
-- expires_at is read only by garbage collection (fositestore DeleteExpired:
-- expires_at < $1, every 10 minutes). Rows arrive in expiry order (one TTL
-- per grant), so a BRIN index finds the expired page ranges for a fraction
-- of a btree's upkeep: an insertion only touches the summary of its range.
-- autosummarize: a filled range is summarized at once rather than at the
-- next VACUUM (an unsummarized range is scanned whole by every GC pass).
DROP INDEX oauth2_access_expires_at_idx;
CREATE INDEX oauth2_access_expires_at_idx ON oauth2_access USING brin (expires_at) WITH (autosummarize = on);
DROP INDEX oauth2_refresh_expires_at_idx;
CREATE INDEX oauth2_refresh_expires_at_idx ON oauth2_refresh USING brin (expires_at) WITH (autosummarize = on);

-- A rotation deactivates any other active refresh token of the family
-- (request_id = $1 AND active). Used tokens stay until they expire (reuse
-- detection), so by request_id alone that visited every token the family
-- ever had, growing with each rotation. Only active rows are indexed here:
-- at most one per family.
CREATE INDEX oauth2_refresh_active_family_idx ON oauth2_refresh (request_id) WHERE active;
