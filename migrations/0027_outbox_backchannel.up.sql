-- Outbox rows of kind 'backchannel_logout' carry one logout notice to one
-- relying party; the worker signs the logout token at each attempt. A row
-- whose deliverer gives up (too old to matter) gets failed_at and is no
-- longer retried; it stays listed for the administrators until purged.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('webhook', 'mail', 'backchannel_logout'));
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
DROP INDEX outbox_due_idx;
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
