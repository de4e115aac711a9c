//! What every connection of the broker shares: who the broker is, its topics, groups and
//! transactions, and the signal that wakes waiting fetches when data arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::watch;

use super::disk::{Disk, Recovered};
use super::groups::Coordinator;
use super::limits::Limits;
use super::topics::Topics;
use super::txns::{Ended, Transactions};

/// The broker's one node, as Metadata and FindCoordinator answers name it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Node id.
    pub id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
}

/// The first producer id a broker started now hands out: the time in milliseconds times
/// 1,000, so that a broker restarted without its data never hands out an id that a client
/// of the broker before it still holds (librdkafka then fails with
/// OutOfOrderSequenceNumber). Ids are only compared, never interpreted; Kafka's also
/// come from a counter that survives restarts (in its controller's log).
fn first_producer_id() -> i64 {
    chrono::Utc::now().timestamp_millis().saturating_mul(1000)
}

/// Shared state of one broker.
#[derive(Debug)]
pub struct State {
    /// This broker.
    pub node: Node,
    /// Cluster id (Metadata v2+), which tells edm that the broker is its own.
    pub cluster_id: String,
    /// Create a topic when a client asks for one that does not exist (Kafka's
    /// `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (Kafka's `num.partitions`).
    pub default_partitions: i32,
    /// Topics and their logs.
    pub topics: Topics,
    /// Consumer groups.
    pub groups: Coordinator,
    /// Transactional producers.
    pub transactions: Transactions,
    /// What a client may ask and the broker may hold.
    pub limits: Arc<Limits>,
    next_producer_id: AtomicI64,
    /// Bumped after every append: fetches waiting for data watch it.
    appended: watch::Sender<u64>,
}

impl State {
    /// A broker with no topics.
    pub fn new(
        node: Node,
        cluster_id: String,
        auto_create_topics: bool,
        default_partitions: i32,
    ) -> Self {
        Self {
            node,
            cluster_id,
            auto_create_topics,
            default_partitions,
            topics: Topics::default(),
            groups: Coordinator::default(),
            transactions: Transactions::default(),
            limits: Arc::new(Limits::default()),
            next_producer_id: AtomicI64::new(first_producer_id()),
            appended: watch::Sender::new(0),
        }
    }

    /// The same broker with `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.topics.set_limits(&limits);
        self.limits = Arc::new(limits);
        self
    }

    /// A broker that keeps its data on `disk`, with what `disk` held at start. A
    /// transaction that was open when the broker stopped is aborted: the coordinator that
    /// knew it is gone, and its partitions' readers must not wait for it.
    pub fn with_data(mut self, disk: Arc<Disk>, recovered: Recovered) -> Self {
        self.topics = Topics::on_disk(disk.clone(), recovered.topics);
        self.topics.set_limits(&self.limits);
        self.groups = Coordinator::on_disk(disk, recovered.offsets);
        let next = (recovered.max_producer_id + 1).max(first_producer_id());
        self.next_producer_id = AtomicI64::new(next);
        let now = chrono::Utc::now().timestamp_millis();
        for topic in self.topics.all() {
            for log in &topic.partitions {
                let mut log = super::topics::lock(log);
                for (producer_id, epoch) in log.open_transactions() {
                    tracing::warn!(topic = %topic.name, producer_id, "a transaction open when the broker stopped is aborted");
                    log.end_transaction(producer_id, epoch, false, now);
                }
            }
        }
        self
    }

    /// A producer id not handed out before.
    pub fn new_producer_id(&self) -> i64 {
        self.next_producer_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Wakes every fetch waiting for data.
    pub fn notify_appended(&self) {
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that sees each later [`State::notify_appended`].
    pub fn watch_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Writes the markers and commits the offsets of a transaction that ended.
    pub fn write_transaction_end(&self, ended: &Ended) {
        let now = chrono::Utc::now().timestamp_millis();
        for (topic, partition) in &ended.partitions {
            if let Some(log) = self.topics.partition(topic, *partition) {
                super::topics::lock(&log).end_transaction(
                    ended.producer_id,
                    ended.producer_epoch,
                    ended.commit,
                    now,
                );
            }
        }
        for (group, offsets) in &ended.offsets {
            self.groups.commit_unchecked(group, offsets.clone());
        }
        if !ended.partitions.is_empty() {
            self.notify_appended();
        }
    }

    /// Periodic work: sessions, rebalance deadlines, transaction timeouts.
    pub fn tick(&self) {
        self.groups.tick();
        for ended in self.transactions.abort_expired(|| self.new_producer_id()) {
            self.write_transaction_end(&ended);
        }
    }
}
