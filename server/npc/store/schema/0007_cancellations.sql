-- Tracking of cancellations (bajas) and plan migrations: OSIPTEL's daily reports.

-- Operators bound to report (more than 500,000 subscribers), managed with `npc admin`. An operator
-- reports every report date from `since` on; `until` (when set) is the last date it must report.
CREATE TABLE reporting_operators (
    operator_id  text PRIMARY KEY REFERENCES operators(id),
    since        date NOT NULL,
    until        date,
    subscribers  bigint,                     -- as declared when registered, for the record
    updated_at   timestamptz NOT NULL
);

-- One daily report per operator and date. A resent report replaces its records and bumps
-- `version`; `first_received_at` decides whether the report came on time.
CREATE TABLE cancellation_reports (
    id                 bigserial PRIMARY KEY,
    operator_id        text NOT NULL REFERENCES operators(id),
    report_date        date NOT NULL,
    due_at             timestamptz NOT NULL,
    first_received_at  timestamptz NOT NULL,
    received_at        timestamptz NOT NULL,
    version            integer NOT NULL,
    record_count       integer NOT NULL,
    UNIQUE (operator_id, report_date)
);

CREATE TABLE cancellation_report_records (
    report_id         bigint NOT NULL REFERENCES cancellation_reports(id) ON DELETE CASCADE,
    request_code      text NOT NULL,
    kind              text NOT NULL,
    service           text NOT NULL,
    channel           text NOT NULL,
    requested_at      timestamptz NOT NULL,
    document_type     text NOT NULL,
    document_number   text NOT NULL,
    service_number    text,
    service_status    text NOT NULL,
    scheduled_date    date,
    state             text NOT NULL,
    executed_at       timestamptz,
    execution_reason  text,
    target_plan       text,
    PRIMARY KEY (report_id, request_code)
);
CREATE INDEX cancellation_report_records_code ON cancellation_report_records (request_code);

CREATE SEQUENCE tracked_request_seq;

-- Each request as its latest report (by report date) describes it.
CREATE TABLE tracked_requests (
    id                 text PRIMARY KEY,
    operator_id        text NOT NULL REFERENCES operators(id),
    request_code       text NOT NULL,
    kind               text NOT NULL,
    service            text NOT NULL,
    channel            text NOT NULL,
    requested_at       timestamptz NOT NULL,
    document_type      text NOT NULL,
    document_number    text NOT NULL,
    service_number     text,
    service_status     text NOT NULL,
    scheduled_date     date,
    scheduled_deadline timestamptz,
    state              text NOT NULL,
    executed_at        timestamptz,
    execution_reason   text,
    target_plan        text,
    last_report_date   date NOT NULL,
    first_reported_at  timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (operator_id, request_code)
);
