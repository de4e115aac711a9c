-- edm: MySQL schema of the inventory service (the course's tables, unchanged,
-- plus one table of edm's own that makes every saga step idempotent).
-- Applied by `edm setup`, and by MySQL itself at the compose stack's first start.

CREATE TABLE IF NOT EXISTS inventory (
    id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name char(30) NOT NULL,
    price int(10) NOT NULL,
    quantity int(10) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS inventory_history (
    id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- Order 서비스에서 관리하는 transaction id (the order service's transaction id)
    transaction_id char(36) NOT NULL,
    inventory_id int(10) NOT NULL,
    quantity int(10) NOT NULL,
    KEY inventory_history_transaction (transaction_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per saga step the inventory consumer has applied: RESERVE (ORDER_CREATED) or
-- RELEASE (ORDER_CANCEL). Written in the same transaction as the stock change, its primary
-- key makes a redelivered event a no-op, and its outcome lets the consumer re-send the
-- same answer so the saga never stalls.
CREATE TABLE IF NOT EXISTS inventory_saga_step (
    transaction_id char(36) NOT NULL,
    step varchar(16) NOT NULL,
    inventory_id int(10) NOT NULL,
    quantity int(10) NOT NULL,
    outcome varchar(32) NOT NULL,
    total_price bigint NULL,
    created_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (transaction_id, step)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
