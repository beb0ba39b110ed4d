-- Each compliance record names where its rule comes from (issue 15, item 13): the regulator's
-- text, an operator's internal procedure, or the clearinghouse's own choice; and a severity only
-- where the source gives one (the infraction table of the portability regulation).
--
-- The ledger is append-only: records written before this migration keep what they said (no
-- source, their severity as written); ADD COLUMN and DROP NOT NULL rewrite no row and fire no
-- row trigger. Numbered 0016 so that branches adding migrations at the same time do not collide.
ALTER TABLE compliance_records
    ADD COLUMN source_kind text
        CHECK (source_kind IN ('regulation', 'operator_procedure', 'clearinghouse')),
    ADD COLUMN source_document text,
    ADD COLUMN source_note text,
    ALTER COLUMN severity DROP NOT NULL;

-- The regulator's summaries and filters read by rule over a period.
CREATE INDEX compliance_by_rule ON compliance_records (flow, rule, observed_at);
