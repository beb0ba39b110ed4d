-- Registry of inoperability of the sales and after-sales applications (seed 002, Peru).

CREATE TABLE attention_points (
    operator_id    text NOT NULL REFERENCES operators(id),
    code           text NOT NULL,
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('store', 'dealer', 'call_centre')),
    address        text NOT NULL,
    location       text NOT NULL,
    registered_at  timestamptz NOT NULL,
    PRIMARY KEY (operator_id, code)
);

-- The correlative numbering of each operator. The row is updated in the transaction that stores
-- the event, so a rolled-back registration gives its number back: no gaps, unlike a sequence.
CREATE TABLE inoperability_counters (
    operator_id  text PRIMARY KEY REFERENCES operators(id),
    last_number  bigint NOT NULL CHECK (last_number > 0)
);

CREATE SEQUENCE inoperability_report_seq;

CREATE TABLE inoperability_reports (
    id            text PRIMARY KEY,
    operator_id   text NOT NULL REFERENCES operators(id),
    submitted_at  timestamptz NOT NULL
);

CREATE TABLE inoperability_events (
    id                    text PRIMARY KEY,
    operator_id           text NOT NULL,
    number                bigint NOT NULL CHECK (number > 0),
    attention_point_code  text NOT NULL,
    request_type          text NOT NULL
        CHECK (request_type IN ('claims', 'activations', 'cancellations', 'inquiries')),
    scenario              text NOT NULL
        CHECK (scenario IN ('mass_failure', 'unforeseen_event', 'error_or_test')),
    detail                text NOT NULL DEFAULT '',
    started_at            timestamptz NOT NULL,
    registered_at         timestamptz NOT NULL,
    ended_at              timestamptz,
    closing_reason        text,
    closing_note          text NOT NULL DEFAULT '',
    closed_at             timestamptz,
    report_due_at         timestamptz,
    report_id             text REFERENCES inoperability_reports(id),
    reported_at           timestamptz,
    UNIQUE (operator_id, number),
    FOREIGN KEY (operator_id, attention_point_code) REFERENCES attention_points (operator_id, code),
    CHECK ((ended_at IS NULL) = (closing_reason IS NULL) AND (ended_at IS NULL) = (closed_at IS NULL)),
    CHECK (ended_at IS NULL OR ended_at > started_at)
);
-- "La herramienta solo permitirá un (1) solo registro por tipo de trámite": one open event per
-- attention point and request type.
CREATE UNIQUE INDEX inoperability_one_open
    ON inoperability_events (operator_id, attention_point_code, request_type)
    WHERE ended_at IS NULL;
CREATE INDEX inoperability_events_period ON inoperability_events (operator_id, started_at);

-- Critical transactions served during an open event (blocking for theft or loss; claims).
CREATE TABLE inoperability_critical_transactions (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL REFERENCES inoperability_events(id),
    kind        text NOT NULL CHECK (kind IN ('block_stolen_or_lost', 'claim_filing')),
    reference   text NOT NULL,
    served_at   timestamptz NOT NULL
);
CREATE INDEX inoperability_critical_event ON inoperability_critical_transactions (event_id);
