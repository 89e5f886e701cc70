ALTER TABLE oauth2_clients DROP COLUMN require_mfa;
