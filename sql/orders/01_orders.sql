-- edm: the order table of `edm lab`'s embedded order store (SQLite), with the DynamoDB
-- item's attributes as columns. `IF NOT EXISTS`: a lab database made before migrations
-- existed only gets this migration recorded.
CREATE TABLE IF NOT EXISTS orders (
    transaction_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    addr TEXT NOT NULL,
    tel TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    updated TEXT NOT NULL,
    reason TEXT NULL,
    -- The outbox: the ORDER_CREATED event until the broker has it.
    pending_event TEXT NULL,
    PRIMARY KEY (transaction_id, user_id)
);

-- The unsent orders only (a partial index), so that the outbox relay reads a handful of
-- rows, not the table.
CREATE INDEX IF NOT EXISTS orders_unsent ON orders (updated) WHERE pending_event IS NOT NULL;
