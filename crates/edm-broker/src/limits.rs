//! What one broker may hold and what one request may ask: Apache Kafka's limits, under
//! the names of its configs, so that no client (a buggy one, a port scanner, a tool that
//! speaks another protocol) can make the broker grow without end. Where Kafka has no
//! limit (topics, partitions, connections, in-memory retention), edm's default is written
//! beside Kafka's in README, "edm broker and Apache Kafka".

use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// The limits of one broker (flags of `edm broker`).
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Largest request a client may send; a larger one closes its connection (Kafka's
    /// `socket.request.max.bytes`, 100 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = 100 * MIB,
          value_parser = clap::value_parser!(u64).range(1024..=1 << 31))]
    pub max_request_bytes: u64,
    /// Bytes of requests read and not yet answered, all connections together; past it,
    /// connections wait before reading their next request (Kafka's
    /// `queued.max.request.bytes`, unlimited by default). At least --max-request-bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 512 * MIB,
          value_parser = clap::value_parser!(u64).range(1024..=1 << 40))]
    pub queued_request_bytes: u64,
    /// Connections open at once; past it, new ones wait in the listen backlog until one
    /// closes (Kafka's `max.connections`, unlimited by default).
    #[arg(long, value_name = "COUNT", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// A connection with no request for this long is closed (Kafka's
    /// `connections.max.idle.ms`, 10 minutes).
    #[arg(long, value_name = "MS", default_value_t = 600_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connections_max_idle_ms: u64,
    /// Topics the broker holds at most; past it, creating one fails with
    /// POLICY_VIOLATION (Kafka has no such limit).
    #[arg(long, value_name = "COUNT", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_topics: u64,
    /// Partitions the broker holds at most, all topics together; past it, creating or
    /// growing a topic fails with POLICY_VIOLATION (Kafka has no such limit).
    #[arg(long, value_name = "COUNT", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_partitions: u64,
    /// Largest fetch answer, whatever the client asks (Kafka's `fetch.max.bytes`, 55 MiB);
    /// its first batch is sent whole even when larger, so that a reader always moves on.
    #[arg(long, value_name = "BYTES", default_value_t = 55 * MIB,
          value_parser = clap::value_parser!(u64).range(1024..=1 << 31))]
    pub fetch_max_bytes: u64,
    /// Longest metadata a committed offset may carry; a longer one is refused with
    /// OFFSET_METADATA_TOO_LARGE (Kafka's `offset.metadata.max.bytes`, 4 KiB).
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub offset_metadata_max_bytes: u64,
    /// Bytes a partition keeps, oldest batches dropped first, for topics that do not set
    /// `retention.bytes` (Kafka's `log.retention.bytes`, unlimited by default, on disk;
    /// edm keeps every partition in memory, so it bounds them). -1: keep everything.
    /// Compacted topics keep everything: edm broker does not compact.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * MIB as i64,
          value_parser = clap::value_parser!(i64).range(-1..))]
    pub retention_bytes: i64,
}

impl Default for Limits {
    /// The flags' defaults: written once, in the `#[arg]`s above.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            limits: Limits,
        }
        <Defaults as clap::Parser>::parse_from(["edm-broker"]).limits
    }
}

impl Limits {
    /// How long a connection may stay idle.
    pub fn connections_max_idle(&self) -> Duration {
        Duration::from_millis(self.connections_max_idle_ms)
    }

    /// Limits that contradict each other, said in the flags' words.
    pub fn check(&self) -> Result<(), String> {
        if self.queued_request_bytes < self.max_request_bytes {
            return Err(format!(
                "--queued-request-bytes {} is smaller than --max-request-bytes {}: a request \
                 that large could never be read",
                self.queued_request_bytes, self.max_request_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_ones_readme_gives() {
        let limits = Limits::default();
        assert_eq!(limits.max_request_bytes, 100 * MIB);
        assert_eq!(limits.queued_request_bytes, 512 * MIB);
        assert_eq!(limits.max_connections, 4096);
        assert_eq!(limits.connections_max_idle(), Duration::from_secs(600));
        assert_eq!(
            (limits.max_topics, limits.max_partitions),
            (10_000, 100_000)
        );
        assert_eq!(limits.fetch_max_bytes, 55 * MIB);
        assert_eq!(limits.offset_metadata_max_bytes, 4096);
        assert_eq!(limits.retention_bytes, 1024 * MIB as i64);
        assert!(limits.check().is_ok());
    }
}
