-- Notifications to subscribers (e-mail, SMS): a transactional outbox.
-- A flow queues a message in the transaction that changes the case, so a case never exists without
-- its notice and a failed send never blocks or undoes the case; a delivery loop sends and retries.

CREATE TABLE notifications (
    id               bigserial PRIMARY KEY,
    channel          text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient        text NOT NULL,
    subject          text,
    body             text NOT NULL,
    flow             text NOT NULL,
    case_id          text,
    created_at       timestamptz NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    sent_at          timestamptz,
    abandoned_at     timestamptz,
    last_error       text
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at)
    WHERE sent_at IS NULL AND abandoned_at IS NULL;
CREATE INDEX notifications_case ON notifications (flow, case_id);
