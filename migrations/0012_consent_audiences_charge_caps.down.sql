DROP TABLE IF EXISTS oauth2_client_charge_caps;
ALTER TABLE oauth2_consents DROP COLUMN IF EXISTS audiences;
