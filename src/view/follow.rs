//! Reads a lab's saga topics (and their dead-letter topics) from the start and as they
//! grow, into the view's [`Book`]: the same messages `edm trace` reads, kept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Message;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use tokio_util::sync::CancellationToken;

use super::book::Book;
use crate::kafka::{ClusterHealth, Kafka, KafkaFailure};

/// Follows every saga topic of `kafka` into `book` until `shutdown`. Fails only if the
/// topics cannot be listed or assigned at the start.
pub async fn follow(
    kafka: Kafka,
    book: Arc<Mutex<Book>>,
    shutdown: CancellationToken,
) -> Result<(), KafkaFailure> {
    let wanted = crate::tools::trace::saga_topics_present(&kafka).await?;

    // A reader that never commits: a group of its own, so it disturbs no service.
    let group = format!("edm-view-{}", uuid::Uuid::new_v4().simple());
    let consumer = kafka.one_pass_reader(&group)?;
    let unreachable = |detail| KafkaFailure::Unreachable {
        servers: kafka.servers().to_string(),
        detail,
    };
    let mut assignment = TopicPartitionList::new();
    for topic in &wanted {
        crate::kafka::add_whole_topic(&consumer, topic, &mut assignment).map_err(unreachable)?;
    }
    consumer.assign(&assignment).map_err(unreachable)?;
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = consumer.recv() => received,
        };
        match received {
            Ok(message) => {
                let mut book = book.lock().unwrap_or_else(|p| p.into_inner());
                book.take(
                    message.topic(),
                    (message.partition(), message.offset()),
                    message.timestamp().to_millis(),
                    message.key(),
                    message.payload(),
                );
            }
            Err(KafkaError::PartitionEOF(_)) => {}
            Err(error) => {
                if !ClusterHealth::is_unreachable(&error) {
                    tracing::warn!(%error, "the web view's reader failed; retrying in 1 s");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    // A consumer's close blocks for a moment: off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    Ok(())
}
