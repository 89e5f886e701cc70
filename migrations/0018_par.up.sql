-- Pushed authorization requests (RFC 9126). The row key is the SHA-256 of
-- the request_uri, which is a bearer reference to the pushed parameters.
-- used_at is set when the request yields its authorization code: the
-- request_uri can carry the browser through login and consent, but yields
-- one code at most.
CREATE TABLE oauth2_par (
    signature      text PRIMARY KEY,
    request_id     text NOT NULL,
    requested_at   timestamptz NOT NULL,
    client_id      text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes         text[] NOT NULL DEFAULT '{}',
    audience       text[] NOT NULL DEFAULT '{}',
    redirect_uri   text NOT NULL DEFAULT '',
    response_types text[] NOT NULL DEFAULT '{}',
    response_mode  text NOT NULL DEFAULT '',
    default_response_mode text NOT NULL DEFAULT '',
    state          text NOT NULL DEFAULT '',
    form_data      text NOT NULL DEFAULT '',
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX oauth2_par_expires_at_idx ON oauth2_par (expires_at);

-- A client flagged here may start an authorization only through /oauth2/par.
ALTER TABLE oauth2_clients
    ADD COLUMN require_pushed_authorization_requests boolean NOT NULL DEFAULT false;
