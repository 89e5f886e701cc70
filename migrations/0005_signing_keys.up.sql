-- Signing keys for JWTs (access and ID tokens), one chain per algorithm.
-- Keys are scheduled, not flagged: a key signs while activates_at <= now <
-- retires_at, and is published in JWKS from creation until retires_at plus the
-- longest token lifetime. Times come from the application clock so that every
-- replica agrees on the schedule it wrote.
CREATE TABLE signing_keys (
    -- RFC 7638 JWK thumbprint (base64url SHA-256) of the public key.
    kid          text PRIMARY KEY,
    alg          text NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    -- Position in the alg's chain; unique so that two replicas racing to
    -- create the same successor cannot both succeed.
    generation   integer NOT NULL CHECK (generation > 0),
    -- Format byte 0x01 || 12-byte nonce || AES-256-GCM(PKCS#8 DER) under
    -- AUTHD_SECRETS_KEY, with the kid as additional data. Never stored in clear.
    private_key  bytea NOT NULL CHECK (length(private_key) > 29),
    created_at   timestamptz NOT NULL,
    activates_at timestamptz NOT NULL,
    retires_at   timestamptz NOT NULL,
    -- Database clock, bumped on every change: replicas poll
    -- (count, max(updated_at)) to notice rotations without decrypting anything.
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT signing_keys_alg_generation_key UNIQUE (alg, generation),
    CONSTRAINT signing_keys_window_check CHECK (retires_at > activates_at)
);

CREATE FUNCTION signing_keys_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END $$;
CREATE TRIGGER signing_keys_touch BEFORE UPDATE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION signing_keys_touch();
