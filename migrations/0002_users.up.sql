-- Users, roles and browser sessions: the identity every other module refers to.
CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           text NOT NULL,
    email_verified  boolean NOT NULL DEFAULT false,
    name            text NOT NULL DEFAULT '',
    password_hash   text NOT NULL,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Emails are stored normalised (lower-case, trimmed) by the accounts package.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
    description text NOT NULL DEFAULT '',
    builtin     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO roles (name, description, builtin) VALUES
    ('user',  'Every registered user', true),
    ('admin', 'Administers users, roles, clients and credits', true);

CREATE TABLE user_roles (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL REFERENCES roles (name),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role_idx ON user_roles (role);

-- Browser sessions behind the hosted pages' cookie. The cookie holds a random
-- id; only its SHA-256 is stored, so a database leak does not leak sessions.
CREATE TABLE browser_sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   bytea NOT NULL UNIQUE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    timestamptz NOT NULL,
    user_agent   text NOT NULL DEFAULT '',
    ip           text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX browser_sessions_user_idx ON browser_sessions (user_id);
