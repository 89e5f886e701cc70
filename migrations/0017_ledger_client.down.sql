DROP INDEX ledger_transactions_charges_idx;
ALTER TABLE ledger_transactions DROP COLUMN client_id;
