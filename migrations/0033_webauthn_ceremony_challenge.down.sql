DROP INDEX IF EXISTS webauthn_ceremonies_challenge_idx;
ALTER TABLE webauthn_ceremonies DROP COLUMN IF EXISTS challenge_id;
