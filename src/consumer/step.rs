//! What a consumer does with its events: the [`SagaStep`] each service implements, and
//! the default batching that keeps each saga's events in order while distinct sagas run
//! concurrently.

use std::collections::HashMap;
use std::future::Future;

use futures_util::StreamExt;

use crate::event::SagaEvent;
use crate::kafka::Record;

/// Most sagas of one batch a step's default [`SagaStep::handle_batch`] runs at once.
pub const STEP_CONCURRENCY: usize = 64;

/// A record to send once the step is applied: an event of the saga ([`Record::event`]),
/// or a record of the step's own (the payment consumer's decisions).
pub type Outgoing = Record;

/// Why a step did not produce its outgoing events.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The event can never be processed: dead-letter it and move on.
    #[error("{0}")]
    Poison(String),
    /// A server failed: retry the same event later.
    #[error("{0}")]
    Retry(String),
    /// The service cannot go on (what it needs to decide is lost): the loop stops with
    /// this, the batch uncommitted, and the service exits 1 saying why.
    #[error("{0}")]
    Fatal(String),
}

/// What a step did with one event.
pub type StepResult = Result<Vec<Outgoing>, StepError>;

/// The one result of a batch of one event: how a step that works in batches answers
/// [`SagaStep::handle`].
pub fn only_result(mut results: Vec<StepResult>) -> StepResult {
    results
        .pop()
        .unwrap_or_else(|| Err(StepError::Retry("the step had no result".into())))
}

/// What a consumer takes from its topic: a saga event (choreography) or a command or reply
/// (orchestration), parsed from the payload and keyed by its saga.
pub trait Incoming: Sized + Send + Sync {
    /// The message in `payload`, or why it is poison.
    fn parse(payload: Option<&[u8]>) -> Result<Self, String>;
    /// Its saga: messages of one saga are handled in their order.
    fn transaction_id(&self) -> &str;
}

impl Incoming for SagaEvent {
    fn parse(payload: Option<&[u8]>) -> Result<Self, String> {
        SagaEvent::from_payload(payload).map_err(|e| e.to_string())
    }

    fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
}

/// One consumer's business logic: what to do with a message from its topic.
pub trait SagaStep: Send + Sync {
    /// What the step's topic carries.
    type Message: Incoming;

    /// Applies the step to `event`; returns the records to send on.
    fn handle(&self, event: &Self::Message) -> impl Future<Output = StepResult> + Send;

    /// Applies the step to a batch; returns one result per event, in the same order.
    ///
    /// The default runs the events of one `transaction_id` one after the other, and up to
    /// [`STEP_CONCURRENCY`] sagas at once. After an event that must be retried, the later
    /// events of the same saga are not run (they are retried after it).
    fn handle_batch(
        &self,
        events: &[&Self::Message],
    ) -> impl Future<Output = Vec<StepResult>> + Send {
        async move {
            let mut sagas: Vec<Vec<usize>> = Vec::new();
            let mut saga_of: HashMap<&str, usize> = HashMap::new();
            for (index, event) in events.iter().enumerate() {
                let saga = *saga_of.entry(event.transaction_id()).or_insert_with(|| {
                    sagas.push(Vec::new());
                    sagas.len() - 1
                });
                sagas[saga].push(index);
            }
            let done: Vec<Vec<(usize, StepResult)>> = futures_util::stream::iter(sagas)
                .map(|indices| async move {
                    let mut results = Vec::with_capacity(indices.len());
                    let mut blocked = false;
                    for index in indices {
                        let result = match blocked {
                            true => Err(StepError::Retry(
                                "an earlier event of this saga is being retried".into(),
                            )),
                            false => self.handle(events[index]).await,
                        };
                        blocked |= matches!(result, Err(StepError::Retry(_)));
                        results.push((index, result));
                    }
                    results
                })
                .buffer_unordered(STEP_CONCURRENCY)
                .collect()
                .await;
            let mut ordered: Vec<Option<StepResult>> = events.iter().map(|_| None).collect();
            for (index, result) in done.into_iter().flatten() {
                ordered[index] = Some(result);
            }
            ordered
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(StepError::Retry("not run".into()))))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Records the order events are applied in; fails (retry) the event whose
    /// `transaction_id` and `user_id` are `fail`.
    struct Recorder {
        applied: std::sync::Mutex<Vec<String>>,
        fail: (&'static str, &'static str),
    }

    impl SagaStep for Recorder {
        type Message = SagaEvent;

        async fn handle(&self, event: &SagaEvent) -> StepResult {
            // Later sagas finish first, so that only per-saga order can hold.
            let delay = if event.transaction_id == "a" { 5 } else { 0 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let name = format!("{}{}", event.transaction_id, event.order.user_id);
            if (event.transaction_id.as_str(), event.order.user_id.as_str()) == self.fail {
                return Err(StepError::Retry("down".into()));
            }
            self.applied.lock().map(|mut a| a.push(name)).ok();
            Ok(Vec::new())
        }
    }

    fn event(tx: &str, n: &str) -> SagaEvent {
        SagaEvent::from_payload(Some(
            format!(
                r#"{{"order":{{"user_id":"{n}","name":"","addr":"","tel":"","email":""}},
                    "inventory":{{"id":1,"quantity":1}},"transaction_id":"{tx}",
                    "status":"ORDER_CREATED"}}"#
            )
            .as_bytes(),
        ))
        .expect("event")
    }

    #[tokio::test]
    async fn a_batch_keeps_each_sagas_order_and_stops_a_saga_at_its_retry() {
        let events = [
            event("a", "1"),
            event("b", "1"),
            event("a", "2"),
            event("b", "2"),
            event("a", "3"),
            event("b", "3"),
        ];
        let refs: Vec<&SagaEvent> = events.iter().collect();
        let step = Recorder {
            applied: Default::default(),
            fail: ("b", "2"),
        };
        let results = step.handle_batch(&refs).await;

        let outcome: Vec<&str> = results
            .iter()
            .map(|r| match r {
                Ok(_) => "ok",
                Err(StepError::Retry(_)) => "retry",
                Err(StepError::Poison(_)) => "poison",
                Err(StepError::Fatal(_)) => "fatal",
            })
            .collect();
        // b2 failed, so b3 was not run; saga a is unaffected.
        assert_eq!(outcome, ["ok", "ok", "ok", "retry", "ok", "retry"]);
        let applied = step.applied.lock().map(|a| a.clone()).unwrap_or_default();
        let of = |saga: char| -> Vec<&str> {
            applied
                .iter()
                .filter(|n| n.starts_with(saga))
                .map(String::as_str)
                .collect()
        };
        assert_eq!(of('a'), ["a1", "a2", "a3"]);
        assert_eq!(of('b'), ["b1"]);
        // The sagas ran concurrently: b finished before a's first (delayed) event.
        assert_eq!(applied.first().map(String::as_str), Some("b1"));
    }
}
