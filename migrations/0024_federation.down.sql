DELETE FROM email_tokens WHERE purpose = 'link_identity';
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'password_reset', 'cancel_email_change'));
DROP TABLE IF EXISTS user_identities;
DROP TABLE IF EXISTS upstream_providers;
