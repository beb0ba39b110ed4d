-- The event core: operators, the append-only event log, durable deadlines, idempotent command
-- results and the compliance ledger.

CREATE TABLE operators (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{1,31}$'),
    name          text NOT NULL,
    routing_code  text NOT NULL UNIQUE,      -- network code used to route calls to its subscribers
    role          text NOT NULL DEFAULT 'operator' CHECK (role IN ('operator', 'regulator')),
    token_sha256  bytea UNIQUE,              -- digest of the API token (dev/demo identification)
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Every message the clearinghouse sends or receives. Rows are written in the same transaction as
-- the state they describe, with `position` NULL; the sequencer then gives each committed row the
-- next gap-free position and chains its hash. After that a row never changes.
CREATE TABLE events (
    id           bigserial PRIMARY KEY,
    position     bigint UNIQUE,
    occurred_at  timestamptz NOT NULL,
    flow         text NOT NULL,
    type         text NOT NULL,
    code         text,                       -- ABDCP message code alias (SP, ESC, SPR, PEP...)
    case_id      text,
    sender       text NOT NULL,
    audience     text[] NOT NULL DEFAULT '{}',
    broadcast    boolean NOT NULL DEFAULT false,
    payload      jsonb NOT NULL,
    hash         bytea
);
CREATE INDEX events_unsequenced ON events (id) WHERE position IS NULL;
CREATE INDEX events_case ON events (case_id, position);

CREATE TABLE event_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position   bigint NOT NULL,
    hash       bytea NOT NULL
);
INSERT INTO event_head (position, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the event log is append-only';
    END IF;
    IF OLD.position IS NOT NULL
       OR NEW.position IS NULL
       OR (NEW.id, NEW.occurred_at, NEW.flow, NEW.type, NEW.code, NEW.case_id, NEW.sender,
           NEW.audience, NEW.broadcast, NEW.payload)
          IS DISTINCT FROM
          (OLD.id, OLD.occurred_at, OLD.flow, OLD.type, OLD.code, OLD.case_id, OLD.sender,
           OLD.audience, OLD.broadcast, OLD.payload) THEN
        RAISE EXCEPTION 'events are immutable once written; only the sequencer assigns a position';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- Durable deadlines: one row per (flow, case, kind); the process keeps one wake-up for the earliest.
CREATE TABLE deadlines (
    id            bigserial PRIMARY KEY,
    flow          text NOT NULL,
    kind          text NOT NULL,
    case_id       text NOT NULL,
    due_at        timestamptz NOT NULL,
    rule          text NOT NULL,             -- the rule that produced the instant, for audits
    payload       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    fired_at      timestamptz,
    cancelled_at  timestamptz,
    -- equals due_at until a handler fails; then pushed back so a broken handler cannot spin
    next_attempt_at timestamptz NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    UNIQUE (flow, case_id, kind)
);
CREATE INDEX deadlines_pending ON deadlines (next_attempt_at)
    WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- The first answer to every mutating call, so a retry with the same request id returns it.
CREATE TABLE command_results (
    caller          text NOT NULL,
    request_id      text NOT NULL,
    method          text NOT NULL,
    request_digest  bytea NOT NULL,
    status_code     integer NOT NULL,        -- grpc.StatusCode value; 0 is OK
    response        bytea,
    error_message   text,
    error_details   bytea,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (caller, request_id)
);

-- Compliance ledger: every observed missed deadline or broken rule, per operator.
CREATE TABLE compliance_records (
    id           bigserial PRIMARY KEY,
    operator_id  text NOT NULL REFERENCES operators(id),
    flow         text NOT NULL,
    case_id      text NOT NULL,
    rule         text NOT NULL,
    infraction   integer,                    -- number in the regulation's infraction table
    article      text,
    severity     text NOT NULL CHECK (severity IN ('leve', 'grave', 'muy_grave')),
    description  text NOT NULL,
    due_at       timestamptz,
    observed_at  timestamptz NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '{}',
    UNIQUE (flow, case_id, rule, operator_id)
);
CREATE INDEX compliance_by_operator ON compliance_records (operator_id, observed_at);
