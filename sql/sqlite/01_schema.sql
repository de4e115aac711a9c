-- edm: the inventory schema for the embedded SQLite store of `edm lab` (same tables and
-- columns as sql/01_schema.sql, in SQLite's dialect).

CREATE TABLE IF NOT EXISTS inventory (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    price INTEGER NOT NULL,
    quantity INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS inventory_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id TEXT NOT NULL,
    inventory_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS inventory_history_transaction ON inventory_history (transaction_id);

CREATE TABLE IF NOT EXISTS inventory_saga_step (
    transaction_id TEXT NOT NULL,
    step TEXT NOT NULL,
    inventory_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    total_price INTEGER NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (transaction_id, step)
);
