DELETE FROM email_tokens WHERE purpose = 'cancel_email_change';
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'password_reset'));

DELETE FROM login_failures WHERE client <> '';
ALTER TABLE login_failures DROP CONSTRAINT login_failures_pkey;
ALTER TABLE login_failures DROP COLUMN client;
ALTER TABLE login_failures ADD PRIMARY KEY (email);
