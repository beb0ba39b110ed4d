-- The event log without its (case_id, position) index.
--
-- No statement of the server reads the log by case (streams read by position, the sequencer by
-- the unsequenced index), yet every event paid for the index twice: once when written and once
-- when the sequencer positions it, an update that changes an indexed column and so writes a new
-- entry in every index of the table. Measured on the bench's PostgreSQL: 0.02 ms of CPU per event,
-- about 0.25 ms per port (13 events). An audit reading one case's history scans the log; the
-- API's case reads go through the flows' own tables.
DROP INDEX events_case;
