-- OAuth 2.0 / OIDC storage for fosite: registered clients, the five token
-- tables fosite writes through storage/fositestore, and client-assertion JTIs.
--
-- Token rows are keyed by the SHA-256 (hex) of what fosite passes (a token
-- signature, or the raw authorize code for OIDC rows), so a database leak does
-- not leak usable codes and JWT signatures fit an index. request_id names a
-- token family (code -> access/refresh -> rotated refresh ...) and is NOT
-- unique: revocation hits every row sharing it. Expiry lives in the session
-- JSON for fosite; expires_at copies it for garbage collection only.

CREATE TABLE oauth2_clients (
    id                              text PRIMARY KEY CHECK (id <> ''),
    -- SHA-256 of a server-generated >=256-bit secret; NULL for clients that
    -- authenticate without a shared secret (public, private_key_jwt).
    secret_hash                     bytea CHECK (secret_hash IS NULL OR octet_length(secret_hash) = 32),
    name                            text NOT NULL DEFAULT '',
    redirect_uris                   text[] NOT NULL DEFAULT '{}',
    post_logout_redirect_uris       text[] NOT NULL DEFAULT '{}',
    grant_types                     text[] NOT NULL DEFAULT '{}',
    response_types                  text[] NOT NULL DEFAULT '{}',
    scopes                          text[] NOT NULL DEFAULT '{}',
    audience                        text[] NOT NULL DEFAULT '{}',
    public                          boolean NOT NULL DEFAULT false,
    first_party                     boolean NOT NULL DEFAULT false,
    token_endpoint_auth_method      text NOT NULL DEFAULT 'client_secret_basic'
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none')),
    token_endpoint_auth_signing_alg text NOT NULL DEFAULT '',
    jwks                            jsonb,
    jwks_uri                        text NOT NULL DEFAULT '',
    id_token_signed_response_alg    text NOT NULL DEFAULT '',
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT oauth2_clients_public_no_secret CHECK (NOT public OR secret_hash IS NULL)
);

CREATE TABLE oauth2_code (
    signature          text PRIMARY KEY,
    request_id         text NOT NULL,
    requested_at       timestamptz NOT NULL,
    client_id          text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes             text[] NOT NULL DEFAULT '{}',
    granted_scopes     text[] NOT NULL DEFAULT '{}',
    requested_audience text[] NOT NULL DEFAULT '{}',
    granted_audience   text[] NOT NULL DEFAULT '{}',
    form_data          text NOT NULL DEFAULT '',
    session_data       jsonb,
    subject            text NOT NULL DEFAULT '',
    active             boolean NOT NULL DEFAULT true,
    expires_at         timestamptz
);
CREATE INDEX oauth2_code_request_id_idx ON oauth2_code (request_id);
CREATE INDEX oauth2_code_client_id_idx ON oauth2_code (client_id);
CREATE INDEX oauth2_code_subject_idx ON oauth2_code (subject);
CREATE INDEX oauth2_code_expires_at_idx ON oauth2_code (expires_at);

CREATE TABLE oauth2_access (
    signature          text PRIMARY KEY,
    request_id         text NOT NULL,
    requested_at       timestamptz NOT NULL,
    client_id          text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes             text[] NOT NULL DEFAULT '{}',
    granted_scopes     text[] NOT NULL DEFAULT '{}',
    requested_audience text[] NOT NULL DEFAULT '{}',
    granted_audience   text[] NOT NULL DEFAULT '{}',
    form_data          text NOT NULL DEFAULT '',
    session_data       jsonb,
    subject            text NOT NULL DEFAULT '',
    active             boolean NOT NULL DEFAULT true,
    expires_at         timestamptz
);
CREATE INDEX oauth2_access_request_id_idx ON oauth2_access (request_id);
CREATE INDEX oauth2_access_client_id_idx ON oauth2_access (client_id);
CREATE INDEX oauth2_access_subject_idx ON oauth2_access (subject);
CREATE INDEX oauth2_access_expires_at_idx ON oauth2_access (expires_at);

CREATE TABLE oauth2_refresh (
    signature              text PRIMARY KEY,
    request_id             text NOT NULL,
    requested_at           timestamptz NOT NULL,
    client_id              text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes                 text[] NOT NULL DEFAULT '{}',
    granted_scopes         text[] NOT NULL DEFAULT '{}',
    requested_audience     text[] NOT NULL DEFAULT '{}',
    granted_audience       text[] NOT NULL DEFAULT '{}',
    form_data              text NOT NULL DEFAULT '',
    session_data           jsonb,
    subject                text NOT NULL DEFAULT '',
    active                 boolean NOT NULL DEFAULT true,
    expires_at             timestamptz,
    -- Hashed signature of the access token issued with this refresh token.
    access_token_signature text NOT NULL DEFAULT '',
    -- Set when the token is rotated; with rotated_response it lets honest
    -- retries inside the reuse window get the same new pair.
    first_used_at          timestamptz,
    -- Opaque, already-encrypted token response of the first use.
    rotated_response       bytea
);
CREATE INDEX oauth2_refresh_request_id_idx ON oauth2_refresh (request_id);
CREATE INDEX oauth2_refresh_client_id_idx ON oauth2_refresh (client_id);
CREATE INDEX oauth2_refresh_subject_idx ON oauth2_refresh (subject);
CREATE INDEX oauth2_refresh_expires_at_idx ON oauth2_refresh (expires_at);

CREATE TABLE oauth2_oidc (
    signature          text PRIMARY KEY,
    request_id         text NOT NULL,
    requested_at       timestamptz NOT NULL,
    client_id          text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes             text[] NOT NULL DEFAULT '{}',
    granted_scopes     text[] NOT NULL DEFAULT '{}',
    requested_audience text[] NOT NULL DEFAULT '{}',
    granted_audience   text[] NOT NULL DEFAULT '{}',
    form_data          text NOT NULL DEFAULT '',
    session_data       jsonb,
    subject            text NOT NULL DEFAULT '',
    active             boolean NOT NULL DEFAULT true,
    expires_at         timestamptz
);
CREATE INDEX oauth2_oidc_request_id_idx ON oauth2_oidc (request_id);
CREATE INDEX oauth2_oidc_client_id_idx ON oauth2_oidc (client_id);
CREATE INDEX oauth2_oidc_expires_at_idx ON oauth2_oidc (expires_at);

CREATE TABLE oauth2_pkce (
    signature          text PRIMARY KEY,
    request_id         text NOT NULL,
    requested_at       timestamptz NOT NULL,
    client_id          text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes             text[] NOT NULL DEFAULT '{}',
    granted_scopes     text[] NOT NULL DEFAULT '{}',
    requested_audience text[] NOT NULL DEFAULT '{}',
    granted_audience   text[] NOT NULL DEFAULT '{}',
    form_data          text NOT NULL DEFAULT '',
    session_data       jsonb,
    subject            text NOT NULL DEFAULT '',
    -- Soft-deleted when fosite consumes it, so a second exchange attempt
    -- cannot fall back to "no PKCE" (fosite PR #883).
    active             boolean NOT NULL DEFAULT true,
    expires_at         timestamptz
);
CREATE INDEX oauth2_pkce_request_id_idx ON oauth2_pkce (request_id);
CREATE INDEX oauth2_pkce_client_id_idx ON oauth2_pkce (client_id);
CREATE INDEX oauth2_pkce_expires_at_idx ON oauth2_pkce (expires_at);

-- JTIs of client assertions (private_key_jwt) seen until they expire, so an
-- assertion cannot be replayed. Keyed by SHA-256 hex to bound the key size.
CREATE TABLE oauth2_jti (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oauth2_jti_expires_at_idx ON oauth2_jti (expires_at);
