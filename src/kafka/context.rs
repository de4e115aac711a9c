//! The consumers' callbacks: rebalances logged (so a student sees partitions move between
//! instances) and, for `edm lab`, reported, so that it places orders only once its
//! consumers have their partitions.

use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::health::ClusterHealth;

/// The consumers' type: a stream consumer with [`SagaContext`].
pub type SagaConsumer = StreamConsumer<SagaContext>;

/// Told the group name each time a consumer gets partitions (how `edm lab` knows its
/// consumers are ready before it places orders).
#[derive(Debug, Clone)]
pub struct AssignmentNotifier(pub tokio::sync::mpsc::UnboundedSender<String>);

/// The partitions a consumer owns now, and a count of the changes to them: what the
/// orchestrator's timeout watch may judge (it times out only sagas whose replies it owns
/// and has read, and not across a change of owner).
#[derive(Debug, Clone, Default)]
pub struct Owned(Arc<Mutex<Ownership>>);

/// How many times the owned partitions changed, and which they are now.
type Ownership = (u64, Vec<(String, i32)>);

impl Owned {
    /// (changes so far, the partitions owned now).
    pub fn snapshot(&self) -> Ownership {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ownership> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn replace(&self, partitions: Vec<(String, i32)>) {
        let mut owned = self.lock();
        owned.0 += 1;
        owned.1 = partitions;
    }
}

/// Consumer callbacks: logs rebalances, so a student sees partitions move between
/// instances, reports assignments to an optional [`AssignmentNotifier`] and [`Owned`],
/// and tells [`ClusterHealth`] of outages and of a replaced cluster.
pub struct SagaContext {
    group: String,
    on_assigned: Option<AssignmentNotifier>,
    owned: Option<Owned>,
    health: ClusterHealth,
}

impl SagaContext {
    /// Callbacks of a consumer in `group`, telling `on_assigned` and `owned` of its
    /// assignments.
    pub(super) fn new(
        group: &str,
        on_assigned: Option<AssignmentNotifier>,
        owned: Option<Owned>,
        health: ClusterHealth,
    ) -> Self {
        Self {
            group: group.to_string(),
            on_assigned,
            owned,
            health,
        }
    }
}

impl rdkafka::ClientContext for SagaContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // A reader (`Kafka::reader`) asks to hear about the end of each partition: news,
        // not an error.
        if matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        self.health.client_error(&error, reason, &self.group);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }
}

impl ConsumerContext for SagaContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let describe = |list: &rdkafka::TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(owned) = &self.owned {
            owned.replace(match rebalance {
                Rebalance::Assign(list) => list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect(),
                Rebalance::Revoke(_) | Rebalance::Error(_) => Vec::new(),
            });
        }
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, "partitions assigned: {}", describe(list));
                if let Some(notifier) = &self.on_assigned {
                    let _ = notifier.0.send(self.group.clone());
                }
            }
            Rebalance::Revoke(list) => {
                tracing::info!(group = %self.group, "partitions revoked: {}", describe(list));
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed")
            }
        }
    }
}
