-- edm: orchestrated sagas, kept with their order (as on the DynamoDB item).
-- saga_state: RESERVING_STOCK, TAKING_PAYMENT, RELEASING_STOCK, COMPLETE or CANCELLED.
ALTER TABLE orders ADD COLUMN saga_state TEXT NULL;
-- The outbox of the current step: its commands as a JSON array; NULL once final.
ALTER TABLE orders ADD COLUMN saga_commands TEXT NULL;
-- How often the current step has timed out.
ALTER TABLE orders ADD COLUMN saga_timeouts INTEGER NOT NULL DEFAULT 0;
-- The state changes, a JSON array of "<updated> <state> <cause>".
ALTER TABLE orders ADD COLUMN saga_history TEXT NULL;

-- The sagas in flight only, so that the orchestrator finds the steps that timed out
-- without reading the table.
CREATE INDEX orders_saga_in_flight ON orders (updated) WHERE saga_commands IS NOT NULL;
