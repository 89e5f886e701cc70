-- Refresh rotation records which token replaced the one presented, so a
-- retry inside the reuse window is honoured only while that successor is
-- still unused: a client that never received the rotated pair cannot have
-- used it. Nullable without a default: adding it rewrites no rows.
ALTER TABLE oauth2_refresh ADD COLUMN successor_signature text;
