-- A client whose users must pass a second factor before it gets a code.
ALTER TABLE oauth2_clients ADD COLUMN require_mfa boolean NOT NULL DEFAULT false;
