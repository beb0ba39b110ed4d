-- Returns of numbers ported without the subscriber's consent (article 30).

CREATE SEQUENCE number_return_seq;

CREATE TABLE number_returns (
    id                     text PRIMARY KEY,
    port_request_id        text NOT NULL REFERENCES port_requests(id),
    donor                  text NOT NULL REFERENCES operators(id),
    recipient              text NOT NULL REFERENCES operators(id),
    numbers                text[] NOT NULL,
    state                  text NOT NULL,
    resolution             text NOT NULL,
    notified_at            timestamptz NOT NULL,
    answer_deadline        timestamptz NOT NULL,
    disable_at             timestamptz,
    denial_reason          text,
    executed_at            timestamptz,
    recipient_disabled_at  timestamptz,
    donor_enabled_at       timestamptz
);
CREATE UNIQUE INDEX number_returns_one_open_per_port ON number_returns (port_request_id)
    WHERE state IN ('requested', 'scheduled');
