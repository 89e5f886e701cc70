-- The server side of a WebAuthn ceremony between its two requests: the
-- challenge and what the library needs to finish (webauthn.SessionData as
-- JSON). The browser holds a random token in a short-lived cookie; only its
-- SHA-256 is stored. A row is deleted when it is used, whatever the outcome,
-- so a challenge serves one ceremony.
CREATE TABLE webauthn_ceremonies (
    token_hash bytea PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('register', 'login', 'second_factor')),
    -- registration and the second factor belong to a known user; a
    -- passwordless login does not know its user until the assertion
    user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    -- the browser session a registration was started from, which must finish it
    session_id uuid REFERENCES browser_sessions (id) ON DELETE CASCADE,
    data       jsonb NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires_idx ON webauthn_ceremonies (expires_at);
