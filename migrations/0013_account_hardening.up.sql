-- Login backoff per (account, client address), beside one account-wide row
-- per account (client = ''), so failures from other addresses cannot lock
-- the owner out for long.
ALTER TABLE login_failures ADD COLUMN client text NOT NULL DEFAULT '';
ALTER TABLE login_failures DROP CONSTRAINT login_failures_pkey;
ALTER TABLE login_failures ADD PRIMARY KEY (email, client);

-- Email changes mail the old address a link that cancels the change.
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'password_reset', 'cancel_email_change'));
