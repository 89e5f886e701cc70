-- Passkeys (WebAuthn credentials). The user handle is a random opaque value
-- per user, sent to authenticators instead of the user id, and stable for
-- the account's life: every credential of the user carries it.
CREATE TABLE webauthn_users (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle     bytea NOT NULL UNIQUE CHECK (octet_length(handle) BETWEEN 16 AND 64),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per registered credential. The public key is not secret; a
-- credential is scoped to the RP ID it was registered for (derived from
-- the issuer), so changing the issuer's host retires every passkey.
CREATE TABLE webauthn_credentials (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rp_id              text NOT NULL,
    credential_id      bytea NOT NULL CHECK (octet_length(credential_id) BETWEEN 1 AND 1023),
    name               text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    public_key         bytea NOT NULL,
    attestation_type   text NOT NULL DEFAULT '',
    attestation_format text NOT NULL DEFAULT '',
    -- the raw attestation (webauthn.CredentialAttestation as JSON), kept so
    -- the credential can be checked against metadata later
    attestation        jsonb,
    extensions         jsonb,
    aaguid             bytea,
    transports         text[] NOT NULL DEFAULT '{}',
    attachment         text NOT NULL DEFAULT '',
    sign_count         bigint NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
    clone_warning      boolean NOT NULL DEFAULT false,
    -- the authenticator data flags octet (UP, UV, BE, BS) as last seen
    flags              smallint NOT NULL CHECK (flags BETWEEN 0 AND 255),
    -- the user allowed this passkey to log in without a password
    passwordless       boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_used_at       timestamptz
);
CREATE UNIQUE INDEX webauthn_credentials_rp_credential_key ON webauthn_credentials (rp_id, credential_id);
CREATE INDEX webauthn_credentials_user_idx ON webauthn_credentials (user_id, created_at);
