-- Second factors: a TOTP secret per user (encrypted with AUTHD_SECRETS_KEY),
-- single-use recovery codes (only their SHA-256), the pending half-login
-- between the password and the second factor, and how each browser session
-- was authenticated.

-- confirmed_at is NULL while the user enrols (the secret was shown but no
-- code typed yet); only a confirmed secret counts as a factor. last_step is
-- the RFC 6238 time step of the last accepted code: a code is accepted only
-- for a later step, so a code is never accepted twice.
CREATE TABLE user_totp (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed text NOT NULL,
    confirmed_at  timestamptz,
    last_step     bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL CHECK (octet_length(code_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- A login that passed its first factor and waits for the second (or for
-- the enrolment policy demands). Bound to the browser by a cookie whose
-- SHA-256 is token_hash; short-lived and deleted when used. It is not a
-- session: nothing accepts it but the second-factor step.
CREATE TABLE login_challenges (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify', 'enrol')),
    amr        text[] NOT NULL,
    return_to  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX login_challenges_expiry_idx ON login_challenges (expires_at);

-- RFC 8176 authentication method references of the login behind a session.
ALTER TABLE browser_sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{pwd}';
