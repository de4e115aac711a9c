//! Which `-X` properties go to which client: librdkafka warns when a producer gets a
//! consumer's property and vice versa, so each client gets only those it understands.

/// Which kind of client a `-X` property is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Producer,
    Consumer,
    Admin,
}

/// Common properties that only consumers understand (librdkafka warns when a producer gets one).
const CONSUMER_ONLY: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "group.instance.id",
    "isolation.level",
    "partition.assignment.strategy",
    "group.protocol",
];

/// Common properties that only producers understand.
const PRODUCER_ONLY: &[&str] = &[
    "linger.ms",
    "queue.buffering.max.ms",
    "acks",
    "request.required.acks",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "compression.codec",
    "enable.idempotence",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "transactional.id",
    "partitioner",
];

impl Role {
    pub(super) fn accepts(self, key: &str) -> bool {
        match self {
            Role::Producer => !CONSUMER_ONLY.contains(&key),
            Role::Consumer => !PRODUCER_ONLY.contains(&key),
            Role::Admin => !CONSUMER_ONLY.contains(&key) && !PRODUCER_ONLY.contains(&key),
        }
    }
}
