-- The central number registry: the numbering plan and the numbers that left their range holder.

CREATE TABLE number_ranges (
    id           bigserial PRIMARY KEY,
    operator_id  text NOT NULL REFERENCES operators(id),
    service      text NOT NULL CHECK (service IN ('mobile', 'fixed')),
    numbers      int8range NOT NULL,
    EXCLUDE USING gist (numbers WITH &&)
);

-- A row exists only while a number is served by an operator other than its range holder.
CREATE TABLE ported_numbers (
    number            text PRIMARY KEY,
    service           text NOT NULL,
    range_holder      text NOT NULL REFERENCES operators(id),
    serving_operator  text NOT NULL REFERENCES operators(id),
    ported_at         timestamptz NOT NULL,
    case_id           text
);
CREATE INDEX ported_numbers_serving ON ported_numbers (serving_operator);

CREATE TABLE number_history (
    id             bigserial PRIMARY KEY,
    number         text NOT NULL,
    from_operator  text NOT NULL,
    to_operator    text NOT NULL,
    changed_at     timestamptz NOT NULL,
    reason         text NOT NULL,            -- port, return, disconnection
    case_id        text
);
CREATE INDEX number_history_number ON number_history (number, changed_at);
