//! The order service's outbox relay: the transactional outbox's second half. An order is
//! stored with its ORDER_CREATED event in one write; when the send that follows is lost
//! (the service stopped, or Kafka did not acknowledge in time), the relay finds the order
//! through the outbox index and sends the event, then clears the outbox copy.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::event::SagaEvent;
use crate::kafka::{EventProducer, Record, Topics};
use crate::store::orders::{OrderStore, OrderStoreError};

/// How many outbox events the relay has in flight at once (sends pipelined, then as many
/// concurrent `mark_sent` writes).
const RELAY_BATCH: usize = 256;

/// Sends the outbox's ORDER_CREATED events of orders older than `resend_after` (left by
/// an order service that stopped between storing an order and sending its event, or whose
/// send Kafka did not acknowledge in time); returns how many were sent.
///
/// Several order services may run this side by side on one table: each may send the same
/// event, which is harmless, because every step downstream is idempotent per transaction
/// (the inventory keys its history by transaction id, the payment answer is kept per
/// transaction, the order's status only moves forward).
pub async fn send_pending(
    store: &OrderStore,
    producer: &EventProducer,
    topics: &Topics,
    resend_after: Duration,
) -> Result<usize, OrderStoreError> {
    let pending = store.pending_events(resend_after).await?;
    let mut sent = 0;
    for events in pending.chunks(RELAY_BATCH) {
        let records: Vec<Record> = events
            .iter()
            .map(|event| Record::event(&topics.inventory, event))
            .collect();
        let results = producer.send_all(&records).await;
        let mut delivered = Vec::with_capacity(events.len());
        for (event, result) in events.iter().zip(results) {
            match result {
                Ok(()) => delivered.push(event),
                Err(error) => {
                    let tx = &event.transaction_id;
                    warn!(%tx, %error, "outbox: ORDER_CREATED still not sent; will retry");
                }
            }
        }
        let clearing = delivered
            .into_iter()
            .map(|event| clear_outbox(store, event, topics));
        let marked = futures_util::future::join_all(clearing).await;
        sent += marked.into_iter().filter(|cleared| *cleared).count();
    }
    Ok(sent)
}

/// Empties the outbox of an order whose event the broker has; false (logged) if that
/// failed, so the event will be sent again, harmlessly.
async fn clear_outbox(store: &OrderStore, event: &SagaEvent, topics: &Topics) -> bool {
    let tx = &event.transaction_id;
    match store.mark_sent(tx, &event.order.user_id).await {
        Ok(()) => {
            info!(%tx, "outbox: ORDER_CREATED sent to `{}`", topics.inventory);
            true
        }
        Err(error) => {
            warn!(%tx, %error, "outbox: ORDER_CREATED sent, but its outbox copy could not be cleared (it will be sent again, harmlessly)");
            false
        }
    }
}

/// Runs [`send_pending`] now and then every `resend_after / 2` until `shutdown`.
pub(super) async fn run(
    store: OrderStore,
    producer: EventProducer,
    topics: Topics,
    resend_after: Duration,
    shutdown: CancellationToken,
) {
    let period = (resend_after / 2).max(Duration::from_millis(200));
    loop {
        if let Err(error) = send_pending(&store, &producer, &topics, resend_after).await {
            warn!(%error, "outbox: cannot read pending events; will retry");
        }
        producer.stop_if_fatal(&shutdown);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}
