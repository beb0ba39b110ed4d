-- The audit trail's external anchor and its append-only tables.
--
-- The hash chain alone cannot tell a log cut short, or rewritten and re-hashed, from the genuine
-- one: the clearinghouse signs its head (position, hash, instant) periodically with a key kept
-- outside the database, stores the signed head here and broadcasts it on the log, so every
-- operator and the regulator keep copies (`npc admin verify-log --anchor`).
CREATE TABLE anchors (
    id           bigserial PRIMARY KEY,
    position     bigint NOT NULL,
    hash         bytea NOT NULL,
    anchored_at  timestamptz NOT NULL,
    public_key   bytea NOT NULL,              -- raw Ed25519 public key
    signature    bytea NOT NULL               -- Ed25519 over npc.core.anchor.signed_message
);
CREATE INDEX anchors_latest ON anchors (anchored_at);

-- Row triggers do not fire on TRUNCATE; these refuse it. The application role has no TRUNCATE
-- privilege either, and only the tables' owner may disable a trigger (README, Audit trail).
CREATE FUNCTION refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME;
END $$;

CREATE FUNCTION rows_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;

CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();

-- Compliance records are covered by the log (each is written with its `compliance.recorded`
-- event, which `verify_log` compares it with) and never change once written.
CREATE TRIGGER compliance_records_append_only BEFORE UPDATE OR DELETE ON compliance_records
    FOR EACH ROW EXECUTE FUNCTION rows_append_only();
CREATE TRIGGER compliance_records_no_truncate BEFORE TRUNCATE ON compliance_records
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();

CREATE TRIGGER anchors_append_only BEFORE UPDATE OR DELETE ON anchors
    FOR EACH ROW EXECUTE FUNCTION rows_append_only();
CREATE TRIGGER anchors_no_truncate BEFORE TRUNCATE ON anchors
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();

-- The head only moves forward: moving it back is how a cut tail would be hidden.
CREATE FUNCTION event_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.position < OLD.position
       OR (NEW.position = OLD.position AND NEW.hash IS DISTINCT FROM OLD.hash) THEN
        RAISE EXCEPTION 'the event log head only moves forward';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER event_head_forward_only BEFORE UPDATE OR DELETE ON event_head
    FOR EACH ROW EXECUTE FUNCTION event_head_forward_only();
CREATE TRIGGER event_head_no_truncate BEFORE TRUNCATE ON event_head
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
