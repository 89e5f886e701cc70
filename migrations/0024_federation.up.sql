-- Upstream identity providers (log in with another provider), the identities
-- linked to authd users. (A session through an upstream has amr "fed".)

CREATE TABLE upstream_providers (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The provider's name in URLs and on the CLI.
    slug                 text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{0,31}$'),
    display_name         text NOT NULL,
    -- oidc: discovery from issuer; github: OAuth 2.0 and GitHub's user API.
    kind                 text NOT NULL CHECK (kind IN ('oidc', 'github')),
    issuer               text NOT NULL DEFAULT '',
    auth_url             text NOT NULL DEFAULT '',
    token_url            text NOT NULL DEFAULT '',
    api_url              text NOT NULL DEFAULT '',
    client_id            text NOT NULL,
    -- AES-GCM under a key derived from AUTHD_SECRETS_KEY, bound to id.
    client_secret_sealed text NOT NULL,
    scopes               text[] NOT NULL DEFAULT '{}',
    email_claim          text NOT NULL DEFAULT 'email',
    name_claim           text NOT NULL DEFAULT 'name',
    roles_claim          text NOT NULL DEFAULT '',
    -- Only these upstream roles are ever granted (at account creation).
    allowed_roles        text[] NOT NULL DEFAULT '{}',
    allow_signup         boolean NOT NULL DEFAULT false,
    enabled              boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One upstream identity (provider, subject) belongs to at most one user.
CREATE TABLE user_identities (
    provider_id   uuid NOT NULL REFERENCES upstream_providers (id) ON DELETE CASCADE,
    subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);

-- A mailed link proves an account before an upstream identity is linked to it.
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'password_reset', 'cancel_email_change', 'link_identity'));
