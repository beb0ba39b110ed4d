-- The event log's append-only guard, without a PL/pgSQL call per sequenced row.
--
-- 0001's trigger ran a function on every row the sequencer positions and compared the whole row
-- (jsonb payload included) with its old version: about half a millisecond per batch. The same
-- invariant, stated so that PostgreSQL decides in the trigger's WHEN clause and column list, both
-- evaluated in C, and calls the function only to refuse:
--   * a positioned row never changes and is never deleted (events_append_only, the name the
--     owner's tooling disables, README "Audit trail");
--   * an unsequenced row's content columns are never written and it is never deleted: only the
--     sequencer's `SET position, hash` may touch it, so nothing compares the content;
--   * an unsequenced row updated gets a position.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the event log is append-only';
    END IF;
    RAISE EXCEPTION 'events are immutable once written; only the sequencer assigns a position';
END $$;

DROP TRIGGER events_append_only ON events;
DROP FUNCTION events_append_only();

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW WHEN (OLD.position IS NOT NULL) EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_content_fixed
    BEFORE UPDATE OF id, occurred_at, flow, type, code, case_id, sender, audience, broadcast,
                     payload
    OR DELETE ON events
    FOR EACH ROW WHEN (OLD.position IS NULL) EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_sequenced_with_position BEFORE UPDATE ON events
    FOR EACH ROW WHEN (OLD.position IS NULL AND NEW.position IS NULL)
    EXECUTE FUNCTION events_refuse_change();
