-- Petitions, complaints and appeals (PQR) with CUN, Colombia (CRC regime, arts. 2.1.5.1-2.1.5.15).

-- CUN ranges the SIC assigns to each provider (art. 2.1.5.3, parágrafo 2). Ranges never overlap,
-- so a CUN identifies one PQR across every provider.
CREATE TABLE cun_ranges (
    id           bigserial PRIMARY KEY,
    operator_id  text NOT NULL REFERENCES operators(id),
    numbers      int8range NOT NULL,
    width        integer NOT NULL,           -- digits of every CUN of the range (zero-padded)
    next_value   bigint NOT NULL,            -- the next CUN to issue; past the end when exhausted
    assigned_at  timestamptz NOT NULL,
    assigned_by  text NOT NULL,
    EXCLUDE USING gist (numbers WITH &&)
);
CREATE INDEX cun_ranges_operator ON cun_ranges (operator_id, lower(numbers));

-- One row per PQR, keyed by its CUN for its whole life, reconsideration and appeal included.
CREATE TABLE pqrs (
    id                           text PRIMARY KEY,        -- the CUN
    provider                     text NOT NULL REFERENCES operators(id),
    kind                         text NOT NULL,           -- petition | complaint
    channel                      text NOT NULL,
    subject                      text NOT NULL,
    state                        text NOT NULL,
    user_name                    text NOT NULL,
    document_type                text NOT NULL,
    document_number              text NOT NULL,
    email                        text,
    address                      text,
    phone                        text,
    facts                        text NOT NULL,
    sms_request_id               text,
    filed_at                     timestamptz NOT NULL,
    answer_due                   timestamptz NOT NULL,
    extended_at                  timestamptz,
    extension_reason             text,
    answered_at                  timestamptz,
    outcome                      text,
    answer_summary               text,
    notified_at                  timestamptz,
    reconsideration_until        timestamptz,
    rec_filed_at                 timestamptz,
    appeal_in_subsidy            boolean NOT NULL DEFAULT false,
    rec_facts                    text,
    rec_answer_due               timestamptz,
    rec_extended_at              timestamptz,
    rec_extension_reason         text,
    rec_answered_at              timestamptz,
    rec_outcome                  text,
    rec_summary                  text,
    rec_notified_at              timestamptz,
    silence_at                   timestamptz,
    silence_stage                text,
    silence_effects_due          timestamptz,
    silence_effects_at           timestamptz,
    silence_effects_note         text,
    transfer_due                 timestamptz,
    transferred_at               timestamptz,
    appeal_due                   timestamptz,
    appeal_decided_at            timestamptz,
    appeal_outcome               text,
    appeal_summary               text,
    closed_at                    timestamptz
);
CREATE INDEX pqrs_provider_filed ON pqrs (provider, filed_at);

-- Requests of attention by SMS "QUEJA" to code 85432 (art. 2.1.5.1, parágrafo 1).
CREATE SEQUENCE pqr_sms_seq;

CREATE TABLE pqr_sms_requests (
    id               text PRIMARY KEY,
    provider         text NOT NULL REFERENCES operators(id),
    msisdn           text NOT NULL,
    text             text NOT NULL,
    state            text NOT NULL,          -- received | registered | closed_unreachable
    received_at      timestamptz NOT NULL,
    ack_due          timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    call_due         timestamptz NOT NULL,
    call_attempts    integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    contacted_at     timestamptz,
    cun              text REFERENCES pqrs(id),
    closed_at        timestamptz
);
CREATE INDEX pqr_sms_provider_received ON pqr_sms_requests (provider, received_at);
