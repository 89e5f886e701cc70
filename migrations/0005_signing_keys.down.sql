DROP TABLE IF EXISTS signing_keys;
DROP FUNCTION IF EXISTS signing_keys_touch();
