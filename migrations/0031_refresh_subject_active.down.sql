DROP INDEX oauth2_refresh_subject_active_idx;
CREATE INDEX oauth2_refresh_subject_idx ON oauth2_refresh (subject);
