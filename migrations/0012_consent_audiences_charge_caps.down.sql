ALTER TABLE oauth2_clients DROP COLUMN IF EXISTS charge_max_per_user_day, DROP COLUMN IF EXISTS charge_max_per_spend;
ALTER TABLE oauth2_consents DROP COLUMN IF EXISTS audiences;
