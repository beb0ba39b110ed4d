-- User management system, SGU (Res. 00170-2020-CD/OSIPTEL): problems reported by subscribers,
-- the configurable catalogue of categories and subcategories, and recorded outages.

CREATE SEQUENCE sgu_problem_seq;

-- The catalogue. Each subcategory carries its answer deadline and whether it may become a claim.
CREATE TABLE sgu_subcategories (
    code                 text PRIMARY KEY CHECK (code ~ '^[A-Z]{2,8}-[0-9]{2}$'),
    name                 text NOT NULL,
    category             text NOT NULL CHECK (category ~ '^[A-Z]{2,8}$'),
    category_name        text NOT NULL,
    service              text NOT NULL CHECK (service IN ('mobile', 'fixed')),
    deadline_unit        text NOT NULL CHECK (deadline_unit IN ('business_days', 'hours')),
    deadline_amount      integer NOT NULL CHECK (deadline_amount > 0),
    claimable            boolean NOT NULL,
    claim_business_days  integer NOT NULL CHECK (claim_business_days > 0),
    active               boolean NOT NULL DEFAULT true,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- First stage: mobile service problems whose solution can be carried out in a short time. The
-- instructivo leaves the list and deadlines to the regulator's configuration; these are defaults
-- the regulator edits with SguService.UpsertSubcategory.
INSERT INTO sgu_subcategories (code, name, category, category_name, service, deadline_unit,
                               deadline_amount, claimable, claim_business_days) VALUES
 ('REC-01', 'Recarga no acreditada', 'REC', 'Recargas', 'mobile', 'hours', 24, true, 3),
 ('REC-02', 'Paquete o bono no activado', 'REC', 'Recargas', 'mobile', 'hours', 24, true, 3),
 ('SUS-01', 'Línea suspendida sin motivo', 'SUS', 'Suspensión del servicio', 'mobile', 'hours', 24, true, 3),
 ('SUS-02', 'Línea no reactivada tras el pago', 'SUS', 'Suspensión del servicio', 'mobile', 'hours', 24, true, 3),
 ('POR-01', 'Portabilidad no ejecutada', 'POR', 'Portabilidad numérica', 'mobile', 'business_days', 1, true, 3),
 ('POR-02', 'Servicio sin funcionar tras la portabilidad', 'POR', 'Portabilidad numérica', 'mobile', 'hours', 24, true, 3),
 ('BAJ-01', 'Baja del servicio no atendida', 'BAJ', 'Baja del servicio', 'mobile', 'business_days', 2, true, 15),
 ('BLQ-01', 'Línea o equipo no desbloqueado', 'BLQ', 'Bloqueo por robo o pérdida', 'mobile', 'business_days', 1, true, 15),
 ('INF-01', 'Consulta sobre planes y tarifas', 'INF', 'Información', 'mobile', 'business_days', 2, false, 15);

CREATE TABLE sgu_problems (
    id                       text PRIMARY KEY,
    operator                 text NOT NULL REFERENCES operators(id),
    state                    text NOT NULL,
    channel                  text NOT NULL CHECK (channel IN ('web', 'app', 'office')),
    subscriber_name          text NOT NULL,
    document_type            text NOT NULL,
    document_number          text NOT NULL,
    email                    text,
    contact_phone            text,
    number                   text NOT NULL,
    subcategory              text NOT NULL REFERENCES sgu_subcategories(code),
    category                 text NOT NULL,
    -- the subcategory's terms when the problem was registered: later edits of the catalogue
    -- do not change problems already under way
    deadline_unit            text NOT NULL,
    deadline_amount          integer NOT NULL,
    description              text NOT NULL,
    -- the regulator's orientation office, when registered with the help of its staff
    office_code              text,
    office_name              text,
    office_department        text,
    office_province          text,
    office_district          text,
    office_ubigeo            text,
    registered_by            text,
    -- only the digest of the e-mail confirmation token is kept
    confirmation_sha256      bytea UNIQUE,
    registered_at            timestamptz NOT NULL,
    transferred_at           timestamptz,
    -- the deadline as the subcategory sets it, and as outages extended it
    answer_base_deadline     timestamptz,
    answer_deadline          timestamptz,
    answered_at              timestamptz,
    answer                   text,
    solved                   boolean,
    answered_late            boolean NOT NULL DEFAULT false,
    rated_at                 timestamptz,
    satisfied                boolean,
    score                    integer,
    claimable                boolean NOT NULL,
    claim_business_days      integer NOT NULL,
    escalated_at             timestamptz,
    claim_code_base_deadline timestamptz,
    claim_code_deadline      timestamptz,
    claim_code               text,
    claim_code_assigned_at   timestamptz,
    claim_deadline           timestamptz
);
CREATE INDEX sgu_problems_tray ON sgu_problems (operator, state);
CREATE INDEX sgu_problems_registered ON sgu_problems (registered_at);
-- A claim code identifies one claim of its operator.
CREATE UNIQUE INDEX sgu_problems_claim_code ON sgu_problems (operator, claim_code)
    WHERE claim_code IS NOT NULL;

-- Unavailability of the SGU (operator NULL) or of one operator's system. Deadlines that ran during
-- an outage are extended by the time it overlapped them.
CREATE TABLE sgu_outages (
    id           bigserial PRIMARY KEY,
    operator     text REFERENCES operators(id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason       text NOT NULL,
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX sgu_outages_operator ON sgu_outages (operator, starts_at);
