//! What the order store holds of a saga, beside its messages: the order's status (where a
//! choreographed saga's end is written), and an orchestrated saga's state changes from
//! its history — each with what caused it, and each timeout from when its timer was set
//! (the step began) to when it fired.

use std::time::Duration;

use serde::Serialize;

use crate::orchestration::saga::{Saga, TIMEOUT};
use crate::store::orders::OrderStore;
use crate::tools::trace;

/// Longest the page waits for the store: the diagram is drawn without it after that.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One state change of an orchestrated saga.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    pub at_ms: Option<i64>,
    /// The saga's new state, e.g. `TAKING_PAYMENT`.
    pub state: String,
    /// What moved it: a reply's name, TIMEOUT, or ORDER_CREATED for the first.
    pub cause: String,
    /// Who wrote it: the order service (the first) or the orchestrator.
    pub by: &'static str,
    /// For a TIMEOUT: the step's timer that fired.
    pub timer: Option<Timer>,
}

/// A step's timer: set when the step began, fired (or still running) after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timer {
    /// The step it times.
    pub step: String,
    pub set_ms: Option<i64>,
    /// `None`: still running.
    pub fired_ms: Option<i64>,
}

/// What the order store says of one saga.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stored {
    /// The order's status and reason.
    pub status: Option<String>,
    pub reason: Option<String>,
    /// An orchestrated saga's state changes, oldest first.
    pub states: Vec<StateChange>,
    /// The running timer of an orchestrated saga not yet ended.
    pub running: Option<Timer>,
    /// Why the store could not be read.
    pub error: Option<String>,
}

/// Reads saga `transaction_id` of `user_id` from `orders`; a failure is said in `error`.
pub async fn read(orders: &OrderStore, transaction_id: &str, user_id: Option<&str>) -> Stored {
    let read = async {
        let order = match user_id {
            Some(user) => orders.get(transaction_id, user).await?,
            None => None,
        };
        let saga = orders.saga(transaction_id).await?;
        Ok::<_, crate::store::orders::OrderStoreError>((order, saga))
    };
    let (order, saga) = match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(error)) => return unreadable(error.to_string()),
        Err(_) => return unreadable(format!("no answer in {READ_TIMEOUT:?}")),
    };
    let text = |key: &str| {
        order
            .as_ref()
            .and_then(|o| o.get(key))
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (states, running) = saga.as_ref().map(changes).unwrap_or_default();
    Stored {
        status: text("status"),
        reason: text("reason"),
        states,
        running,
        error: None,
    }
}

/// What the page is told when the store cannot be read: why, and that the topics are shown.
fn unreadable(error: String) -> Stored {
    Stored {
        error: Some(format!(
            "the order store cannot be read ({error}); the diagram shows the topics only"
        )),
        ..Stored::default()
    }
}

/// The saga's state changes, each TIMEOUT with the timer that fired, and the timer of
/// the step it is in if it has not ended.
pub fn changes(saga: &Saga) -> (Vec<StateChange>, Option<Timer>) {
    let mut changes: Vec<StateChange> = Vec::new();
    for entry in trace::saga_states(saga) {
        let state = entry
            .status
            .strip_prefix("saga ")
            .unwrap_or(&entry.status)
            .to_string();
        let cause = entry.reason.unwrap_or_else(|| "ORDER_CREATED".into());
        // A step's timer is set when the saga enters it (or its commands are sent again).
        let timer = (cause == TIMEOUT).then(|| Timer {
            step: changes.last().map_or(String::new(), |c| c.state.clone()),
            set_ms: changes.last().and_then(|c| c.at_ms),
            fired_ms: entry.timestamp_ms,
        });
        changes.push(StateChange {
            at_ms: entry.timestamp_ms,
            state,
            cause,
            by: entry.sent_by,
            timer,
        });
    }
    let running = match saga.state.final_status() {
        Some(_) => None,
        None => changes.last().map(|last| Timer {
            step: saga.state.as_str().to_string(),
            set_ms: last.at_ms,
            fired_ms: None,
        }),
    };
    (changes, running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestration::saga::SagaState;

    fn saga(state: SagaState, history: &[&str]) -> Saga {
        Saga {
            transaction_id: "tx".into(),
            user_id: "kim".into(),
            state,
            commands: Vec::new(),
            timeouts: 0,
            reason: None,
            updated: String::new(),
            history: history.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn a_timeout_shows_the_timer_from_its_step_to_when_it_fired() {
        let timed_out = saga(
            SagaState::Cancelled,
            &[
                "2026-12-06T10:00:00.000000+0000 RESERVING_STOCK ORDER_CREATED",
                "2026-12-06T10:00:00.100000+0000 TAKING_PAYMENT STOCK_RESERVED",
                "2026-12-06T10:00:02.100000+0000 TAKING_PAYMENT TIMEOUT",
                "2026-12-06T10:00:04.100000+0000 RELEASING_STOCK TIMEOUT",
                "2026-12-06T10:00:04.200000+0000 CANCELLED STOCK_RELEASED",
            ],
        );
        let (changes, running) = changes(&timed_out);
        let start = changes[0].at_ms.expect("a time");
        let seen: Vec<(i64, &str, &str, &str)> = changes
            .iter()
            .map(|c| {
                let at = c.at_ms.expect("a time") - start;
                (at, c.state.as_str(), c.cause.as_str(), c.by)
            })
            .collect();
        assert_eq!(
            seen,
            [
                (0, "RESERVING_STOCK", "ORDER_CREATED", "order-service"),
                (100, "TAKING_PAYMENT", "STOCK_RESERVED", "orchestrator"),
                (2100, "TAKING_PAYMENT", "TIMEOUT", "orchestrator"),
                (4100, "RELEASING_STOCK", "TIMEOUT", "orchestrator"),
                (4200, "CANCELLED", "STOCK_RELEASED", "orchestrator"),
            ]
        );
        let timers: Vec<(String, i64, i64)> = changes
            .iter()
            .filter_map(|c| c.timer.clone())
            .map(|t| {
                let (set, fired) = (t.set_ms.expect("set"), t.fired_ms.expect("fired"));
                (t.step, set - start, fired - start)
            })
            .collect();
        // The first fired 2 s after the payment step began; the retried step's after
        // its commands were sent again.
        assert_eq!(
            timers,
            [
                ("TAKING_PAYMENT".to_string(), 100, 2100),
                ("TAKING_PAYMENT".to_string(), 2100, 4100)
            ]
        );
        assert!(running.is_none(), "an ended saga has no timer running");
    }

    #[test]
    fn a_saga_in_flight_has_its_step_timer_running() {
        let waiting = saga(
            SagaState::TakingPayment,
            &[
                "2026-12-06T10:00:00.000000+0000 RESERVING_STOCK ORDER_CREATED",
                "2026-12-06T10:00:00.100000+0000 TAKING_PAYMENT STOCK_RESERVED",
            ],
        );
        let (changes, running) = changes(&waiting);
        let running = running.expect("a timer runs");
        assert_eq!(running.step, "TAKING_PAYMENT");
        assert_eq!(running.set_ms, changes[1].at_ms);
        assert_eq!(running.fired_ms, None);
    }
}
