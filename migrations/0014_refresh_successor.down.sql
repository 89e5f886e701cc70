ALTER TABLE oauth2_refresh DROP COLUMN IF EXISTS successor_signature;
