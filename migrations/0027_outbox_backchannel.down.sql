DELETE FROM outbox WHERE kind = 'backchannel_logout';
DROP INDEX IF EXISTS outbox_due_idx;
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
ALTER TABLE outbox DROP COLUMN IF EXISTS failed_at;
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('webhook', 'mail'));
