//! A batch of stock steps, applied for the inventory's event loop and its command loop
//! alike: one transaction per batch, and a batch MySQL refuses for good taken apart so
//! that only the bad message is dead-lettered.

use std::collections::HashSet;

use tracing::warn;

use crate::consumer::StepError;
use crate::store::inventory::{InventoryError, InventoryStore, StepOutcome, StockStep};

/// Applies a batch's stock steps (or why a message has none) and returns each message's
/// outcome, in order. The whole batch's stock changes go in one transaction (one commit
/// instead of one per message). If the store refuses it for good (a message whose data does
/// not fit the tables), the steps are applied one by one, so that only the bad message goes
/// to the dead-letter topic and the others go on; any other failure retries the batch.
/// Events and commands share it: the same steps, the same books.
pub(crate) async fn apply_in_order(
    store: &InventoryStore,
    steps: Vec<Result<StockStep<'_>, StepError>>,
) -> Vec<Result<StepOutcome, StepError>> {
    let valid: Vec<StockStep<'_>> = steps
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .copied()
        .collect();
    let applied: Vec<Result<StepOutcome, StepError>> = match store.apply(&valid).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error) if error.is_permanent() && valid.len() > 1 => {
            warn!(%error, messages = valid.len(), "MySQL refused the batch; applying its messages one by one to find the one it refuses");
            apply_one_by_one(store, &valid).await
        }
        Err(error) => {
            let failed = |error: &InventoryError| match error.is_permanent() {
                true => StepError::Poison(format!("MySQL refuses this event: {error}")),
                false => StepError::Retry(error.to_string()),
            };
            valid.iter().map(|_| Err(failed(&error))).collect()
        }
    };
    let mut applied = applied.into_iter();
    steps
        .into_iter()
        .map(|step| {
            step?;
            applied.next().unwrap_or_else(|| {
                Err(StepError::Retry(
                    "the store returned too few outcomes".into(),
                ))
            })
        })
        .collect()
}

/// Applies `steps` each in its own transaction, in order: a step MySQL refuses for good is
/// poison, a step that failed otherwise is retried — and so are the later steps of its
/// saga, which must not overtake it.
async fn apply_one_by_one(
    store: &InventoryStore,
    steps: &[StockStep<'_>],
) -> Vec<Result<StepOutcome, StepError>> {
    let mut held_back: HashSet<&str> = HashSet::new();
    let mut outcomes = Vec::with_capacity(steps.len());
    for step in steps {
        let saga = step.transaction_id();
        if held_back.contains(saga) {
            outcomes.push(Err(StepError::Retry(
                "an earlier event of this saga is being retried".into(),
            )));
            continue;
        }
        let outcome = match store.apply(std::slice::from_ref(step)).await {
            Ok(mut one) => one
                .pop()
                .ok_or_else(|| StepError::Retry("the store returned no outcome".into())),
            Err(error) if error.is_permanent() => Err(StepError::Poison(format!(
                "MySQL refuses this event: {error}"
            ))),
            Err(error) => {
                held_back.insert(saga);
                Err(StepError::Retry(error.to_string()))
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}
