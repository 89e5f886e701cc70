-- Accounts extras: pending email changes, single-use email tokens
-- (verification, password reset), per-account login backoff, and the outbox
-- of webhook events and mail written in the same transaction as the change
-- that caused them.

-- A changed email waits here until the new address is verified; login and
-- password reset keep using users.email meanwhile.
ALTER TABLE users ADD COLUMN pending_email text;

-- Verification and reset tokens: >=128-bit random, only the SHA-256 stored.
CREATE TABLE email_tokens (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    -- The address the token was mailed to: verifying it proves that address.
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_tokens_user_idx ON email_tokens (user_id, purpose, created_at DESC);

-- Failed-login backoff keyed by normalised email (not user id), so throttling
-- an unknown address behaves exactly like throttling a real one.
CREATE TABLE login_failures (
    email        text PRIMARY KEY,
    failures     integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_until timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Outbox: kind 'webhook' rows are events for AUTHD_WEBHOOK_URL, kind 'mail'
-- rows are messages for SMTP. next_attempt_at doubles as the lease: a worker
-- claiming a row pushes it into the future by the visibility timeout, so a
-- crashed worker's row becomes due again by itself.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL CHECK (kind IN ('webhook', 'mail')),
    type            text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_id        uuid,
    last_error      text NOT NULL DEFAULT '',
    delivered_at    timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Wake idle workers on every replica as soon as a row commits.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authd_outbox', NEW.kind);
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_notify();
