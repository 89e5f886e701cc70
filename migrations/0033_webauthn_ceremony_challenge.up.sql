-- A passkey second-factor ceremony belongs to the pending login
-- (login_challenges) it answers: at most one per pending login, replaced
-- when the step page is shown again, and gone with the pending login.
ALTER TABLE webauthn_ceremonies ADD COLUMN challenge_id uuid REFERENCES login_challenges (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX webauthn_ceremonies_challenge_idx ON webauthn_ceremonies (challenge_id) WHERE challenge_id IS NOT NULL;
