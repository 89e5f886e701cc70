-- Autovacuum for the tables that churn (issue 23). By default a table is
-- vacuumed once 20% of it is dead: on a refresh-token table of ten million
-- rows that is two million dead row versions, and their index entries,
-- before the first pass; each rotation leaves one dead refresh version and
-- one dead access row, and each purge deletes an interval's worth at once.
-- Vacuuming at 1% (plus a fixed 1,000 rows, so small tables are not
-- vacuumed constantly) keeps the dead share, the bloat and every scan's
-- extra pages small, and lets the space be reused instead of the files
-- growing. Insert-driven vacuum and ANALYZE follow at the same pace, so the
-- visibility map and the statistics stay current on tables that mostly
-- grow between purges.
ALTER TABLE oauth2_access SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE oauth2_refresh SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE oauth2_code SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE oauth2_pkce SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE oauth2_oidc SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
