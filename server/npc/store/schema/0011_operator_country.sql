-- The country whose regulation an operator (or regulator) is under: Peru's services (portability,
-- registry, suspension, returns, cancellations, inoperability, SGU) and OSIPTEL, or Colombia's
-- PQR regime and the SIC. A caller has no rights in another country's services.
ALTER TABLE operators
    ADD COLUMN country text NOT NULL DEFAULT 'PE' CHECK (country IN ('PE', 'CO'));
