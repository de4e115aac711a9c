//! What `edm lab` runs when no servers are configured: a Kafka-protocol broker inside the
//! process (Tansu, in memory) — so the lab drives the same rdkafka code as the real stack —
//! and SQLite files for the stores.

use std::path::PathBuf;
use std::time::Duration;

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::task::JoinHandle;
use url::Url;

/// An in-process Tansu broker on a free port of 127.0.0.1.
pub struct EmbeddedBroker {
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub address: String,
    task: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts the broker and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        // Tansu cannot listen on port 0: take a free port and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = Url::parse(&format!("tcp://{address}"))?;
        let mut broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(111)
            .cluster_id("edm-lab")
            .incarnation_id(uuid::Uuid::new_v4())
            .advertised_listener(url.clone())
            .storage(Url::parse("memory://tansu/")?)
            .listener(url)
            .silent(true)
            .build()
            .await
            .map_err(|e| anyhow::anyhow!("cannot build the embedded Kafka broker: {e:?}"))?;
        let task = tokio::spawn(async move {
            if let Err(error) = broker.serve(tokio::time::Instant::now()).await {
                tracing::error!(?error, "embedded Kafka broker stopped");
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&address).await.is_err() {
            if tokio::time::Instant::now() > deadline || task.is_finished() {
                anyhow::bail!("the embedded Kafka broker did not start on {address}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Self { address, task })
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// librdkafka settings for the embedded broker: a short session so the first group join
/// (which Tansu holds for half the session timeout) is quick.
pub const BROKER_PROPERTIES: [(&str, &str); 2] = [
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "1000"),
];

/// A directory for one lab run's SQLite files.
pub fn data_dir(id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("edm-lab-{id}"))
}

/// A `sqlite:` URL for `file` in `dir`.
pub fn sqlite_url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}
