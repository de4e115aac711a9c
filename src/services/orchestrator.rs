//! The saga orchestrator (`edm orchestrator`, group `order_saga_orchestrator`): the
//! course's second SAGA style. The order service starts each saga (the order and its saga
//! in one write, RESERVE_STOCK in its outbox); the orchestrator takes the participants'
//! replies from `order-saga.replies`, moves the saga (state and next commands in one
//! conditional write on the order — the outbox), then sends the commands, and finally sets
//! the order ORDER_COMPLETE or ORDER_CANCEL itself. A reply that does not fit the saga's
//! state (redelivered, or late after a timeout) changes nothing.
//!
//! Beside the reply loop, a watch ([`timeout_watch`]) finds the sagas whose step
//! got no reply within `--step-timeout`, judged only on replies it has read, and applies
//! the timeout policy of [`crate::orchestration::saga`].
//! Killed at any point, it resumes: a move is stored before its commands are sent, and a
//! step whose commands were lost times out and sends them again.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::order_consumer::{Finished, FinishedSender};
use crate::config::{KafkaArgs, OrderStoreArgs};
use crate::consumer::{self, SagaStep, StepError, StepResult};
use crate::kafka::{EventProducer, Kafka, Owned, Record, Topics};
use crate::orchestration::messages::Reply;
use crate::orchestration::saga::{Move, Saga};
use crate::store::orders::{OrderStore, OrderStoreError};
use timeout_watch::TimeoutWatch;

mod timeout_watch;

/// The orchestrator's consumer group.
pub const GROUP: &str = "order_saga_orchestrator";

/// The default `--step-timeout`: longer than any step takes on a healthy stack (a few
/// milliseconds), short enough that a student sees a stuck saga end.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Timed-out sagas of one round logged one by one; the rest are counted in one line.
const TIMEOUTS_SHOWN: usize = 10;

/// Timeout moves stored at once (each is one conditional write on the order).
const MOVES_IN_FLIGHT: usize = 32;

/// How often a saga is read again when something else moved it between the read and the
/// write (a timeout racing a reply) before the reply is retried later.
const MOVE_ATTEMPTS: usize = 3;

/// What the orchestrator shares between its reply loop and its timeout watch.
#[derive(Clone)]
pub struct Orchestrator {
    /// Where the sagas live, with their orders.
    pub store: OrderStore,
    pub topics: Topics,
    /// Told about every saga this orchestrator ends (how `edm lab` learns of it).
    pub observer: Option<FinishedSender>,
}

fn store_error(error: OrderStoreError) -> StepError {
    match error {
        // The same write will always be refused: dead-letter the reply with the reason.
        _ if error.is_permanent() => StepError::Poison(error.to_string()),
        _ => StepError::Retry(error.to_string()),
    }
}

impl Orchestrator {
    /// Stores `step` of `saga`; its commands as records to send, or `None` if something
    /// moved the saga first. Logs the move unless `quiet`.
    async fn apply(
        &self,
        saga: &Saga,
        step: &Move,
        quiet: bool,
    ) -> Result<Option<Vec<Record>>, OrderStoreError> {
        if !self.store.advance(saga, step).await? {
            return Ok(None);
        }
        let tx = &saga.transaction_id;
        let sent: Vec<&str> = step.commands.iter().map(|c| c.command.as_str()).collect();
        let reason = step.reason.as_deref();
        match step.to.final_status() {
            Some(status) => {
                if !quiet {
                    info!(%tx, reason, "{} → saga {} → order is now {status}", step.cause, step.to.as_str());
                }
                if let Some(observer) = &self.observer {
                    let _ = observer.send(Finished {
                        transaction_id: tx.clone(),
                        status,
                        reason: step.reason.clone(),
                    });
                }
            }
            None if quiet => {}
            None => {
                info!(%tx, reason, "{} → saga {} → {}", step.cause, step.to.as_str(), sent.join(" + "))
            }
        }
        Ok(Some(
            step.commands
                .iter()
                .map(|c| c.record(&self.topics))
                .collect(),
        ))
    }

    /// Applies the timeout policy to `stalled` (sagas whose step got no reply within
    /// `step_timeout`, judged by [`timeout_watch`]), and sends what it decides;
    /// returns how many sagas moved. The first [`TIMEOUTS_SHOWN`] sagas of a round are
    /// logged one by one, the rest in one line: a queue of thousands (a loaded stack, a
    /// participant stopped) would otherwise bury the log in identical lines.
    pub(super) async fn time_out(
        &self,
        producer: &EventProducer,
        stalled: Vec<Saga>,
        step_timeout: Duration,
    ) -> usize {
        let due: Vec<(Saga, Move)> = stalled
            .into_iter()
            .filter_map(|saga| saga.on_timeout().map(|step| (saga, step)))
            .collect();
        for (n, (saga, step)) in due.iter().enumerate() {
            let tx = &saga.transaction_id;
            let commands: Vec<&str> = saga.commands.iter().map(|c| c.command.as_str()).collect();
            let (commands, state) = (commands.join(" + "), saga.state.as_str());
            if n < TIMEOUTS_SHOWN {
                warn!(%tx, timeouts = step.timeouts, "no reply to {commands} within {step_timeout:?} in {state}");
            } else {
                debug!(%tx, timeouts = step.timeouts, "no reply to {commands} within {step_timeout:?} in {state}");
            }
        }
        if due.len() > TIMEOUTS_SHOWN {
            warn!(
                "{} more sagas had no reply within {step_timeout:?}: their commands are sent again or compensated (RUST_LOG=debug names each)",
                due.len() - TIMEOUTS_SHOWN
            );
        }
        let mut records = Vec::new();
        let mut moved = 0;
        for (round, batch) in due.chunks(MOVES_IN_FLIGHT).enumerate() {
            let first = round * MOVES_IN_FLIGHT;
            let moves = batch
                .iter()
                .enumerate()
                .map(|(n, (saga, step))| self.apply(saga, step, first + n >= TIMEOUTS_SHOWN));
            let results = futures_util::future::join_all(moves).await;
            for ((saga, _), result) in batch.iter().zip(results) {
                match result {
                    Ok(Some(commands)) => {
                        moved += 1;
                        records.extend(commands);
                    }
                    Ok(None) => {} // a reply came first
                    Err(error) => {
                        let tx = &saga.transaction_id;
                        warn!(%tx, %error, "cannot store the timeout's move; will retry");
                    }
                }
            }
        }
        let unsent = producer
            .send_all(&records)
            .await
            .into_iter()
            .filter(Result::is_err)
            .count();
        if unsent > 0 {
            warn!("{unsent} commands not sent; each is sent again at its step's next timeout");
        }
        moved
    }
}

impl SagaStep for Orchestrator {
    type Message = Reply;

    async fn handle(&self, reply: &Reply) -> StepResult {
        let tx = &reply.transaction_id;
        for _ in 0..MOVE_ATTEMPTS {
            let Some(saga) = self.store.saga(tx).await.map_err(store_error)? else {
                return Err(StepError::Poison(format!(
                    "no orchestrated saga {tx} in table `{}`",
                    self.store.table()
                )));
            };
            let Some(step) = saga.on_reply(reply) else {
                info!(%tx, "{} → saga stays {} (a redelivered or late reply changes nothing)",
                      reply.reply.as_str(), saga.state.as_str());
                return Ok(Vec::new());
            };
            if let Some(records) = self.apply(&saga, &step, false).await.map_err(store_error)? {
                return Ok(records);
            }
        }
        Err(StepError::Retry(format!(
            "saga {tx} moved under every attempt to apply {}",
            reply.reply.as_str()
        )))
    }
}

/// Runs the orchestrator until `shutdown` (`edm orchestrator`).
pub async fn run(
    kafka: &KafkaArgs,
    dynamo: &OrderStoreArgs,
    step_timeout: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = OrderStore::connect(dynamo).await?;
    store.check_table().await?;
    let kafka = Kafka::connect(kafka).await?;
    orchestrate(&kafka, store, step_timeout, None, shutdown).await
}

/// Runs the orchestrator on `kafka` over an open `store` until `shutdown`, reporting the
/// sagas it ends to `observer` (how `edm lab` runs it).
pub async fn orchestrate(
    kafka: &Kafka,
    store: OrderStore,
    step_timeout: Duration,
    observer: Option<FinishedSender>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    store.check_table().await?;
    info!(table = store.table(), ?step_timeout, "orchestrator started");
    let orchestrator = Orchestrator {
        store,
        topics: kafka.topics.clone(),
        observer,
    };
    let owned = Owned::default();
    let group = kafka.group(GROUP);
    let watch = TimeoutWatch {
        orchestrator: orchestrator.clone(),
        kafka: kafka.clone(),
        group: group.clone(),
        owned: owned.clone(),
        step_timeout,
        unreadable: Default::default(),
    };
    let tools = watch
        .tools()
        .map_err(|error| anyhow::anyhow!("the timeout watch cannot run: {error}"))?;
    let replies = kafka.topics.saga_replies.clone();
    let reading = kafka.clone().tracking_partitions_in(owned);
    // The reply loop and the watch stop together: the orchestrator runs with both or
    // exits.
    let stop = shutdown.child_token();
    let (replied, watched) = tokio::join!(
        async {
            let result =
                consumer::run(&reading, &group, &replies, orchestrator, stop.clone()).await;
            stop.cancel();
            result
        },
        async {
            let result = watch.run(tools, stop.clone()).in_current_span().await;
            stop.cancel();
            result
        }
    );
    watched.map_err(|error| anyhow::anyhow!("the timeout watch stopped: {error}"))?;
    Ok(replied?)
}
