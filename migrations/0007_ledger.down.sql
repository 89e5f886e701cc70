DROP TRIGGER users_ledger_account ON users;
DROP FUNCTION ledger_create_user_account();
DROP TABLE ledger_entries;
DROP TABLE ledger_transactions;
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_append_only();
DROP FUNCTION ledger_entries_balanced();
