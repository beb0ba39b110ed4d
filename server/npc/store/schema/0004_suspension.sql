-- Suspension for debt of ported numbers, and their reactivation (article 13).

CREATE SEQUENCE suspension_seq;

CREATE TABLE suspensions (
    id                         text PRIMARY KEY,
    port_request_id            text NOT NULL REFERENCES port_requests(id),
    number                     text NOT NULL,
    donor                      text NOT NULL REFERENCES operators(id),
    recipient                  text NOT NULL REFERENCES operators(id),
    state                      text NOT NULL,
    bill_number                text NOT NULL,
    due_date                   date NOT NULL,
    amount                     text NOT NULL,
    currency                   text NOT NULL,
    requested_at               timestamptz NOT NULL,
    suspend_deadline           timestamptz NOT NULL,
    suspended_at               timestamptz,
    suspension_ends_at         timestamptz,
    paid_at                    timestamptz,
    reactivation_requested_at  timestamptz,
    reactivation_deadline      timestamptz,
    reactivated_at             timestamptz
);
-- A number has at most one suspension under way.
CREATE UNIQUE INDEX suspensions_one_open ON suspensions (number) WHERE state <> 'reactivated';
