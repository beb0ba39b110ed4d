-- Holidays the regulator decrees at run time (`npc admin holidays`), on top of the `holidays`
-- package's data: a row with a name makes its date a holiday of the country, a row without one
-- takes the package's holiday of that date away. Every change is also an event of the log.
CREATE TABLE decreed_holidays (
    country     text NOT NULL,
    day         date NOT NULL,
    name        text,
    decreed_at  timestamptz NOT NULL,
    PRIMARY KEY (country, day)
);

-- A denied return records its typed reason (npc.v1.ReturnDenialReason, as its lower-case name).
ALTER TABLE number_returns ADD COLUMN denial text;
