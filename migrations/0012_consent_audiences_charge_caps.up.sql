-- Remembered consent covers the audiences the consent page showed, not only
-- the scopes: a token for another resource server needs a new consent.
ALTER TABLE oauth2_consents ADD COLUMN audiences text[] NOT NULL DEFAULT '{}';

-- A charging service's limits, enforced by the ledger under the account
-- lock: at most charge_max_per_spend credits in one charge, at most
-- charge_max_per_user_day credits charged to one user per UTC day. 0 means
-- no limit. On the client row, so the client cache serves them.
ALTER TABLE oauth2_clients
    ADD COLUMN charge_max_per_spend bigint NOT NULL DEFAULT 0 CHECK (charge_max_per_spend >= 0),
    ADD COLUMN charge_max_per_user_day bigint NOT NULL DEFAULT 0 CHECK (charge_max_per_user_day >= 0);
