ALTER TABLE browser_sessions DROP COLUMN amr;
DROP TABLE login_challenges;
DROP TABLE user_recovery_codes;
DROP TABLE user_totp;
