-- Append-only audit trail of security-relevant actions, written in the same
-- transaction as the change it records.
CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    type        text NOT NULL,             -- e.g. login.succeeded, role.added, credits.spent
    actor_type  text NOT NULL CHECK (actor_type IN ('user', 'client', 'admin', 'system', 'anonymous')),
    actor_id    text NOT NULL DEFAULT '',
    target_type text NOT NULL DEFAULT '',
    target_id   text NOT NULL DEFAULT '',
    outcome     text NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'failure')),
    request_id  text NOT NULL DEFAULT '',
    ip          text NOT NULL DEFAULT '',
    user_agent  text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, id);
CREATE INDEX audit_events_type_idx ON audit_events (type, id);

-- Append-only: the application role may insert but never rewrite history.
CREATE FUNCTION audit_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();
