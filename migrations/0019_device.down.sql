DROP TABLE IF EXISTS oauth2_device;
