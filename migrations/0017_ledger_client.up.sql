-- The OAuth client each ledger transaction came through: the app of a user's
-- token, the service of a client's token ('' before this migration, and for
-- postings made outside the API). Transactions are append-only: rows written
-- before keep '', and their hashes (which cover the client id only when it is
-- set) stay valid.
ALTER TABLE ledger_transactions ADD COLUMN client_id text NOT NULL DEFAULT '';

-- A client's service charges to one user since a given time (its daily cap).
CREATE INDEX ledger_transactions_charges_idx ON ledger_transactions (account_id, client_id, created_at)
    INCLUDE (amount) WHERE kind = 'spend' AND actor_type = 'client';
