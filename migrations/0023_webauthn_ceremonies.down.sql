DROP TABLE IF EXISTS webauthn_ceremonies;
