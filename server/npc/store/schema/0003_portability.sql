-- The portability process: prior consultations (CP) and port requests (SP).

CREATE SEQUENCE prior_consultation_seq;
CREATE SEQUENCE port_request_seq;

CREATE TABLE prior_consultations (
    id              text PRIMARY KEY,
    recipient       text NOT NULL REFERENCES operators(id),
    donor           text NOT NULL REFERENCES operators(id),
    service         text NOT NULL,
    document        jsonb NOT NULL,
    numbers         jsonb NOT NULL,          -- the blocks as filed
    number_count    integer NOT NULL,
    state           text NOT NULL,
    submitted_at    timestamptz NOT NULL,
    donor_deadline  timestamptz NOT NULL,
    answered_at     timestamptz,
    donor_silent    boolean NOT NULL DEFAULT false,
    objection       jsonb,
    CHECK (recipient <> donor)
);
CREATE INDEX prior_consultations_recipient ON prior_consultations (recipient, submitted_at DESC);
CREATE INDEX prior_consultations_donor ON prior_consultations (donor, submitted_at DESC);

CREATE TABLE port_requests (
    id                    text PRIMARY KEY,
    recipient             text NOT NULL REFERENCES operators(id),
    donor                 text NOT NULL REFERENCES operators(id),
    service               text NOT NULL,
    subscriber            jsonb NOT NULL,
    numbers               jsonb NOT NULL,
    number_count          integer NOT NULL,
    special_client        boolean NOT NULL,
    state                 text NOT NULL,
    form_number           text NOT NULL DEFAULT '',
    prior_consultation_id text REFERENCES prior_consultations(id),
    received_at           timestamptz NOT NULL,
    submitted_at          timestamptz NOT NULL,
    donor_deadline        timestamptz NOT NULL,
    answered_at           timestamptz,
    donor_silent          boolean NOT NULL DEFAULT false,
    objection             jsonb,
    debt_proof            jsonb,
    admissible_at         timestamptz,
    installation_date     date,
    schedule_deadline     timestamptz,
    execution_limit       timestamptz,
    scheduled_at          timestamptz,
    executed_at           timestamptz,
    donor_disabled_at     timestamptz,
    recipient_enabled_at  timestamptz,
    closed_at             timestamptz,
    rejection_reason      text,
    CHECK (recipient <> donor)
);
CREATE INDEX port_requests_recipient ON port_requests (recipient, submitted_at DESC);
CREATE INDEX port_requests_donor ON port_requests (donor, submitted_at DESC);

-- One row per number of a request. `live` is true while the request can still lead to a port;
-- the partial unique index is what guarantees a number never has two live requests.
CREATE TABLE port_request_numbers (
    port_request_id  text NOT NULL REFERENCES port_requests(id),
    number           text NOT NULL,
    modality         text NOT NULL,
    live             boolean NOT NULL DEFAULT true,
    PRIMARY KEY (port_request_id, number)
);
CREATE UNIQUE INDEX port_request_numbers_one_live ON port_request_numbers (number) WHERE live;
