//! Saga steps on the stock: reserve (ORDER_CREATED) and release (ORDER_CANCEL), each
//! applied exactly once, one at a time or a whole batch in one transaction.
//!
//! A step first claims its row in `inventory_saga_step` (primary key `transaction_id,
//! step`). A redelivered event finds the row taken and gets the recorded outcome back
//! without touching stock.

use sqlx::{Any, Transaction};

use super::{Applied, Dialect, InventoryError, InventoryStore, Release, Reservation};
use crate::event::{ItemRequest, reason};

const STEP_RESERVE: &str = "RESERVE";
const STEP_RELEASE: &str = "RELEASE";
const OUTCOME_RESERVED: &str = "RESERVED";
const OUTCOME_RELEASED: &str = "RELEASED";
const OUTCOME_NOTHING_RESERVED: &str = "NOTHING_RESERVED";
const OUTCOME_PENDING: &str = "PENDING";

/// One saga step to apply to the stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockStep<'a> {
    /// Take `quantity` of `item_id` for saga `transaction_id` (ORDER_CREATED).
    Reserve {
        /// With `Reserve`, the step's key in `inventory_saga_step`: a redelivery finds it.
        transaction_id: &'a str,
        /// What to take; an id that names no item rejects the order (UNKNOWN_ITEM).
        item_id: i64,
        /// Units asked for.
        quantity: i64,
    },
    /// Give back what saga `transaction_id` still holds (ORDER_CANCEL). The amount comes
    /// from the history (the net of the saga's rows), not from the event, so a reservation
    /// made by another implementation of the inventory consumer is compensated too, and a
    /// rejected reservation gives nothing back.
    Release {
        /// Whose reservation to give back; with `Release`, the step's key.
        transaction_id: &'a str,
        /// The item named by the event.
        item_id: i64,
        /// Units named by the event (the amount given back comes from the history).
        quantity: i64,
    },
}

impl<'a> StockStep<'a> {
    /// Take `item`'s units for saga `transaction_id` (ORDER_CREATED, RESERVE_STOCK).
    pub fn reserve(transaction_id: &'a str, item: &ItemRequest) -> Self {
        StockStep::Reserve {
            transaction_id,
            item_id: item.id,
            quantity: item.quantity,
        }
    }

    /// Give back what saga `transaction_id` holds of `item` (ORDER_CANCEL, RELEASE_STOCK).
    pub fn release(transaction_id: &'a str, item: &ItemRequest) -> Self {
        StockStep::Release {
            transaction_id,
            item_id: item.id,
            quantity: item.quantity,
        }
    }

    /// The saga the step belongs to.
    pub fn transaction_id(&self) -> &'a str {
        match self {
            StockStep::Reserve { transaction_id, .. }
            | StockStep::Release { transaction_id, .. } => transaction_id,
        }
    }

    fn item_id(&self) -> i64 {
        match self {
            StockStep::Reserve { item_id, .. } | StockStep::Release { item_id, .. } => *item_id,
        }
    }
}

/// What a [`StockStep`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Outcome of a reservation.
    Reserve(Applied<Reservation>),
    /// Outcome of a release.
    Release(Applied<Release>),
}

impl InventoryStore {
    /// Takes `quantity` of `item_id` for saga `transaction_id`, once (one step applied
    /// alone; the inventory consumer applies whole batches with [`Self::apply`]).
    pub async fn reserve(
        &self,
        transaction_id: &str,
        item_id: i64,
        quantity: i64,
    ) -> Result<Applied<Reservation>, InventoryError> {
        let step = StockStep::Reserve {
            transaction_id,
            item_id,
            quantity,
        };
        match self.apply(&[step]).await?.pop() {
            Some(StepOutcome::Reserve(applied)) => Ok(applied),
            _ => Err(InventoryError::Internal("a reservation had no outcome")),
        }
    }

    /// Applies `steps` in their order in one transaction: all of them or, on an error,
    /// none. On MySQL the items they touch are locked first, in id order, so that two
    /// consumer instances applying batches at once queue instead of deadlocking.
    pub async fn apply(&self, steps: &[StockStep<'_>]) -> Result<Vec<StepOutcome>, InventoryError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::MySql {
            let mut items: Vec<i64> = steps.iter().map(StockStep::item_id).collect();
            items.sort_unstable();
            items.dedup();
            for item in items {
                sqlx::query(self.dialect.select_item_for_update())
                    .bind(item)
                    .fetch_optional(&mut *tx)
                    .await?;
            }
        }
        let mut outcomes = Vec::with_capacity(steps.len());
        for step in steps {
            outcomes.push(match *step {
                StockStep::Reserve {
                    transaction_id,
                    item_id,
                    quantity,
                } => StepOutcome::Reserve(
                    self.reserve_in(&mut tx, transaction_id, item_id, quantity)
                        .await?,
                ),
                StockStep::Release {
                    transaction_id,
                    item_id,
                    quantity,
                } => StepOutcome::Release(
                    self.release_in(&mut tx, transaction_id, item_id, quantity)
                        .await?,
                ),
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn reserve_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        transaction_id: &str,
        item_id: i64,
        quantity: i64,
    ) -> Result<Applied<Reservation>, InventoryError> {
        if !claim_step(tx, transaction_id, STEP_RESERVE, item_id, quantity).await? {
            let recorded = self
                .recorded_outcome(tx, transaction_id, STEP_RESERVE)
                .await?;
            let outcome = match recorded {
                Some((label, Some(total_price), _)) if label == OUTCOME_RESERVED => {
                    Reservation::Reserved { total_price }
                }
                Some((label, _, _)) if label == reason::OUT_OF_STOCK => Reservation::Rejected {
                    reason: reason::OUT_OF_STOCK,
                },
                _ => Reservation::Rejected {
                    reason: reason::UNKNOWN_ITEM,
                },
            };
            return Ok(Applied {
                outcome,
                duplicate: true,
            });
        }
        let row: Option<(i32, i32)> = sqlx::query_as(self.dialect.select_item_for_update())
            .bind(item_id)
            .fetch_optional(&mut **tx)
            .await?;
        let outcome = match row {
            None => Reservation::Rejected {
                reason: reason::UNKNOWN_ITEM,
            },
            Some((_, stock)) if i64::from(stock) < quantity => Reservation::Rejected {
                reason: reason::OUT_OF_STOCK,
            },
            Some((price, _)) => {
                sqlx::query("UPDATE inventory SET quantity = quantity - ? WHERE id = ?")
                    .bind(quantity)
                    .bind(item_id)
                    .execute(&mut **tx)
                    .await?;
                insert_history(tx, transaction_id, item_id, -quantity).await?;
                Reservation::Reserved {
                    total_price: i64::from(price) * quantity,
                }
            }
        };
        let (label, total_price) = match &outcome {
            Reservation::Reserved { total_price } => (OUTCOME_RESERVED, Some(*total_price)),
            Reservation::Rejected { reason } => (*reason, None),
        };
        record_outcome(
            tx,
            transaction_id,
            STEP_RESERVE,
            label,
            quantity,
            total_price,
        )
        .await?;
        Ok(Applied {
            outcome,
            duplicate: false,
        })
    }

    async fn release_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        transaction_id: &str,
        item_id: i64,
        quantity: i64,
    ) -> Result<Applied<Release>, InventoryError> {
        if !claim_step(tx, transaction_id, STEP_RELEASE, item_id, quantity).await? {
            let recorded = self
                .recorded_outcome(tx, transaction_id, STEP_RELEASE)
                .await?;
            let outcome = match recorded {
                Some((label, _, held)) if label == OUTCOME_RELEASED => {
                    Release::Released { quantity: held }
                }
                _ => Release::NothingReserved,
            };
            return Ok(Applied {
                outcome,
                duplicate: true,
            });
        }
        let held: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT inventory_id, CAST(-SUM(quantity) AS SIGNED) FROM inventory_history \
             WHERE transaction_id = ? GROUP BY inventory_id ORDER BY inventory_id",
        )
        .bind(transaction_id)
        .fetch_all(&mut **tx)
        .await?;
        let mut released = 0;
        for (held_item, held_quantity) in held.into_iter().filter(|(_, q)| *q > 0) {
            sqlx::query("UPDATE inventory SET quantity = quantity + ? WHERE id = ?")
                .bind(held_quantity)
                .bind(held_item)
                .execute(&mut **tx)
                .await?;
            insert_history(tx, transaction_id, i64::from(held_item), held_quantity).await?;
            released += held_quantity;
        }
        let (outcome, label) = match released {
            0 => (Release::NothingReserved, OUTCOME_NOTHING_RESERVED),
            _ => (Release::Released { quantity: released }, OUTCOME_RELEASED),
        };
        record_outcome(tx, transaction_id, STEP_RELEASE, label, released, None).await?;
        Ok(Applied {
            outcome,
            duplicate: false,
        })
    }

    /// The recorded outcome of a step: label, total price, units. A locking read on MySQL,
    /// so it sees a row another transaction committed after this one began.
    async fn recorded_outcome(
        &self,
        tx: &mut Transaction<'_, Any>,
        transaction_id: &str,
        step: &str,
    ) -> Result<Option<(String, Option<i64>, i64)>, InventoryError> {
        let row: Option<(String, Option<i64>, i32)> =
            sqlx::query_as(self.dialect.select_recorded_step())
                .bind(transaction_id)
                .bind(step)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(row.map(|(label, price, quantity)| (label, price, i64::from(quantity))))
    }
}

/// Claims a step's row; false if the step was already applied (or is being applied by a
/// concurrent transaction that has since committed, or earlier in this batch).
async fn claim_step(
    tx: &mut Transaction<'_, Any>,
    transaction_id: &str,
    step: &str,
    item_id: i64,
    quantity: i64,
) -> Result<bool, InventoryError> {
    let inserted = sqlx::query(
        "INSERT INTO inventory_saga_step (transaction_id, step, inventory_id, quantity, outcome) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(transaction_id)
    .bind(step)
    .bind(item_id)
    .bind(quantity)
    .bind(OUTCOME_PENDING)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// Records what a claimed step did: its outcome, the units it moved and the price.
async fn record_outcome(
    tx: &mut Transaction<'_, Any>,
    transaction_id: &str,
    step: &str,
    outcome: &str,
    quantity: i64,
    total_price: Option<i64>,
) -> Result<(), InventoryError> {
    sqlx::query(
        "UPDATE inventory_saga_step SET outcome = ?, quantity = ?, total_price = ? \
         WHERE transaction_id = ? AND step = ?",
    )
    .bind(outcome)
    .bind(quantity)
    .bind(total_price)
    .bind(transaction_id)
    .bind(step)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_history(
    tx: &mut Transaction<'_, Any>,
    transaction_id: &str,
    item_id: i64,
    quantity: i64,
) -> Result<(), InventoryError> {
    sqlx::query(
        "INSERT INTO inventory_history (transaction_id, inventory_id, quantity) VALUES (?, ?, ?)",
    )
    .bind(transaction_id)
    .bind(item_id)
    .bind(quantity)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
