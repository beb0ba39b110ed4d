-- What the sequencer needs to read only the events above what it knows is settled.
--
-- The sequencer found waiting events with `position IS NULL ORDER BY id`. Positioning an event
-- changes an indexed column, so the old version's entries stay in every index until VACUUM: the
-- scan walked every event positioned since the last autovacuum (29,000 dead entries, 22-40 ms a
-- read, after half a minute of the bench; on a log of ten million events autovacuum waits for
-- two million). The sequencer now reads above a floor, an id below which every event is
-- positioned or never will be visible (`npc.core.sequencer.Floor`); the floor is sound only if
--   * an event's id is drawn by a transaction that already has its transaction id, so that a
--     snapshot whose xmin passed it proves the event committed or aborted: the id's default
--     takes the transaction id first (CASE evaluates its condition before its result);
--   * the sequence hands out each id when it is drawn, never from a backend's cache.
ALTER TABLE events ALTER COLUMN id
    SET DEFAULT CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval('events_id_seq') END;
ALTER SEQUENCE events_id_seq CACHE 1;

-- The position's uniqueness without an entry for every event not yet positioned: each event was
-- indexed twice (NULL when written, its position when sequenced), and the planner could answer
-- `position IS NULL` from this index with a bitmap over every dead NULL entry. Reads by position
-- (`position > $1`, `position = $1`) imply NOT NULL and use the partial index.
CREATE UNIQUE INDEX events_position ON events (position) WHERE position IS NOT NULL;
ALTER TABLE events DROP CONSTRAINT events_position_key;
