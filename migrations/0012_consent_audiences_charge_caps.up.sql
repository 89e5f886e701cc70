-- Remembered consent covers the audiences the consent page showed, not only
-- the scopes: a token for another resource server needs a new consent.
ALTER TABLE oauth2_consents ADD COLUMN audiences text[] NOT NULL DEFAULT '{}';

-- A charging service's limits, enforced by the ledger under the account
-- lock: at most per_spend credits in one charge, at most per_user_day
-- credits charged to one user per UTC day. NULL means no limit. The caps
-- die with their client.
CREATE TABLE oauth2_client_charge_caps (
    client_id    text PRIMARY KEY REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    per_spend    bigint CHECK (per_spend IS NULL OR per_spend > 0),
    per_user_day bigint CHECK (per_user_day IS NULL OR per_user_day > 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
