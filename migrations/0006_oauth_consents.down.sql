DROP TABLE IF EXISTS oauth2_consents;
