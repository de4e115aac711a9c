//! `edm broker`: a Kafka-protocol broker of edm's own — one node, in memory — that `edm lab`
//! embeds and that students without Docker run in a terminal of its own.
//!
//! Why edm has one: the lab needs a broker inside the process, and the one it used (Tansu
//! 0.6) showed consumers holes in a partition (offsets handed out before the batch was
//! stored), answered ListOffsets wrongly for multi-record batches, listed the whole log on
//! every fetch (cost growing with the log), held every fetch for its full wait, and lost
//! group members for minutes after a restart. This broker is built to be correct first and
//! cheap second:
//! - a partition's offsets are assigned and its batch stored in one step, under the
//!   partition's lock ([`log`]); reads find their start by binary search;
//! - a fetch answers as soon as it has data and otherwise waits, woken by the next append
//!   (so librdkafka's default `fetch.wait.max.ms` of 500 ms costs no latency, and an idle
//!   consumer makes two fetches a second);
//! - consumer groups follow Kafka's classic protocol ([`groups`]); a member whose
//!   connection closes while it waits to join is dropped at once;
//! - idempotent producers' sequences are checked and repeats stored once
//!   ([`producers`]); transactions write commit/abort markers and keep read_committed
//!   readers below their last stable offset ([`txns`]).
//!
//! The wire format is the `kafka-protocol` crate's; request handlers are in [`handle`],
//! connections in [`server`]. Not implemented: replication, SASL/TLS, ACLs, compaction and
//! retention (nothing is deleted while the broker runs), quotas, KIP-848 groups, fetch
//! sessions. Data lives as long as the process, or on disk with `--data-dir` ([`disk`]).

mod batch;
mod committed;
mod configs;
mod disk;
mod groups;
mod handle;
mod limits;
mod log;
mod producers;
mod server;
mod state;
mod topics;
mod txns;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use limits::Limits;
use state::{Node, State};

/// Start of the cluster id of every edm broker: how edm recognises its own broker.
pub const CLUSTER_ID_PREFIX: &str = "edm-";

/// Whether `cluster_id` (from a Metadata answer) is an edm broker's.
pub fn is_edm_cluster(cluster_id: &str) -> bool {
    cluster_id.starts_with(CLUSTER_ID_PREFIX)
}

/// How a broker is set up: `edm broker`'s flags, or the lab's embedded broker.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerConfig {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "EDM_BROKER_LISTEN", default_value = "127.0.0.1:19092")]
    pub listen: SocketAddr,
    /// Host that clients are told to connect to (default: the listen address, or
    /// 127.0.0.1 when listening on 0.0.0.0).
    #[arg(long)]
    pub advertised_host: Option<String>,
    /// Port that clients are told to connect to (default: the one listened on), for a
    /// broker reached through a forwarded port or a proxy (Kafka's `advertised.listeners`).
    #[arg(long)]
    pub advertised_port: Option<u16>,
    /// Create topics on first use, as Kafka does by default (`--no-auto-create-topics`
    /// turns it off).
    #[arg(long = "no-auto-create-topics", action = clap::ArgAction::SetFalse,
          help = "Refuse to create topics on first use, as production brokers usually do \
                  (Kafka's auto.create.topics.enable=false)")]
    pub auto_create_topics: bool,
    /// Partitions of a topic created on first use.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub default_partitions: i32,
    /// Keep topics, events and committed offsets in this directory, so that they survive a
    /// restart (default: in memory, gone when the broker stops).
    #[arg(long, env = "EDM_BROKER_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// What a client may ask and the broker may hold.
    #[command(flatten)]
    pub limits: Limits,
}

impl BrokerConfig {
    /// A broker on `listen` with Kafka's defaults (auto-creation on, one partition).
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            advertised_host: None,
            advertised_port: None,
            auto_create_topics: true,
            default_partitions: 1,
            data_dir: None,
            limits: Limits::default(),
        }
    }
}

/// Longest [`Broker::stop`] waits for connections to end.
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A running broker; stops when [`Broker::stop`] is called or it is dropped.
pub struct Broker {
    address: SocketAddr,
    advertised: String,
    cluster_id: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Broker {
    /// Binds and starts serving on the current runtime.
    pub async fn start(config: &BrokerConfig) -> std::io::Result<Broker> {
        config
            .limits
            .check()
            .map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidInput, why))?;
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        let host = match &config.advertised_host {
            Some(host) => host.clone(),
            None if address.ip().is_unspecified() => "127.0.0.1".to_string(),
            None => address.ip().to_string(),
        };
        let port = config.advertised_port.unwrap_or(address.port());
        let mut cluster_id = format!(
            "{CLUSTER_ID_PREFIX}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let data = match &config.data_dir {
            Some(dir) => {
                let (disk, recovered) = disk::Disk::open(dir, &cluster_id)?;
                tracing::info!(
                    dir = %dir.display(),
                    topics = recovered.topics.len(),
                    "data directory read back"
                );
                cluster_id = recovered.cluster_id.clone();
                Some((disk, recovered))
            }
            None => None,
        };
        let node = Node {
            id: 1,
            host: host.clone(),
            port: i32::from(port),
        };
        let mut state = State::new(
            node,
            cluster_id.clone(),
            config.auto_create_topics,
            config.default_partitions,
        )
        .with_limits(config.limits.clone());
        if let Some((disk, recovered)) = data {
            state = state.with_data(disk, recovered);
        }
        let state = Arc::new(state);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server::serve(listener, state, shutdown.clone()));
        Ok(Broker {
            address,
            advertised: format!("{host}:{port}"),
            cluster_id,
            shutdown,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.advertised
    }

    /// Its cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Stops accepting, closes every connection and returns once every connection task
    /// has ended — or, should one hang (a write to a client that reads nothing), after
    /// [`STOP_WAIT`], with a WARN.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(STOP_WAIT, &mut task).await.is_err()
        {
            tracing::warn!(
                "connections still open {STOP_WAIT:?} after the broker stopped: dropped"
            );
            task.abort();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The request path without a socket, for the fuzz target (`fuzz/`, README "Fuzzing the
/// broker"): frame → header → body → handler → answer, on a broker of its own.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::handle::Client;
    use super::state::{Node, State};

    /// A broker's state and one client connection to it.
    pub struct Target {
        state: Arc<State>,
        client: Client,
    }

    impl Default for Target {
        fn default() -> Self {
            let node = Node {
                id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
            };
            Self {
                state: Arc::new(State::new(node, "edm-fuzz".into(), true, 3)),
                client: Client {
                    id: String::new(),
                    host: "/127.0.0.1".into(),
                },
            }
        }
    }

    impl Target {
        /// The framed answer to `frame` (a request without its length prefix); `Err` when
        /// the broker would close the connection instead, with why.
        /// The broker's periodic work (sessions, rebalances, transaction timeouts) goes
        /// on meanwhile, as its ticker task does, so that a join can complete.
        pub async fn answer(&mut self, frame: Bytes) -> Result<Option<Bytes>, String> {
            tokio::select! {
                answer = super::server::answer(&self.state, &mut self.client, frame) => answer,
                never = super::server::tick(self.state.clone()) => match never {},
            }
        }
    }
}
