-- OIDC Back-Channel Logout 1.0: a public session id for ID and logout
-- tokens, which relying parties each browser session logged in to, and the
-- clients' back-channel logout registration.

-- sid is what relying parties see of a browser session (ID token and logout
-- token "sid"): random, unrelated to the cookie and to the id the account
-- pages use to manage sessions.
ALTER TABLE browser_sessions
    ADD COLUMN sid text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '');
ALTER TABLE browser_sessions ADD CONSTRAINT browser_sessions_sid_key UNIQUE (sid);

-- A row per (browser session, client) that received an authorization through
-- the session: the relying parties to notify when the session ends. Rows go
-- with their session or client.
CREATE TABLE oauth2_session_clients (
    browser_session_id uuid NOT NULL REFERENCES browser_sessions (id) ON DELETE CASCADE,
    client_id          text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (browser_session_id, client_id)
);
CREATE INDEX oauth2_session_clients_client_idx ON oauth2_session_clients (client_id);

ALTER TABLE oauth2_clients
    ADD COLUMN backchannel_logout_uri text NOT NULL DEFAULT '',
    ADD COLUMN backchannel_logout_session_required boolean NOT NULL DEFAULT false;
