ALTER TABLE oauth2_clients DROP COLUMN IF EXISTS require_pushed_authorization_requests;
DROP TABLE IF EXISTS oauth2_par;
