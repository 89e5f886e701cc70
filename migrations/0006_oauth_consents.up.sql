-- Remembered consent: the scopes a user has granted an OAuth client, so the
-- consent page is shown only for scopes not granted before. A consent dies
-- with its user or client.
CREATE TABLE oauth2_consents (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    scopes     text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX oauth2_consents_client_id_idx ON oauth2_consents (client_id);
