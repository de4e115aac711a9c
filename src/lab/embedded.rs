//! What `edm lab` runs when no servers are configured: a Kafka-protocol broker inside the
//! process (Tansu, in memory) — so the lab drives the same rdkafka code as the real stack —
//! and SQLite files for the stores.

use std::path::PathBuf;
use std::time::Duration;

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use url::Url;

/// An in-process Tansu broker on a free port of 127.0.0.1, on a runtime (and threads) of
/// its own, so that the broker and the services do not queue behind each other's tasks.
pub struct EmbeddedBroker {
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub address: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: std::thread::JoinHandle<()>,
}

/// Worker threads of the broker's runtime.
const BROKER_THREADS: usize = 2;

impl EmbeddedBroker {
    /// Starts the broker and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        // Tansu cannot listen on port 0: take a free port and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = Url::parse(&format!("tcp://{address}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(BROKER_THREADS)
            .thread_name("tansu")
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (built_tx, built) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("tansu-broker".into())
            .spawn(move || runtime.block_on(serve(url, built_tx, stopped)))?;
        let broker = Self {
            address: address.clone(),
            stop: Some(stop),
            thread,
        };
        match built.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => anyhow::bail!("cannot build the embedded Kafka broker: {error}"),
            Err(_) => anyhow::bail!("the embedded Kafka broker stopped while starting"),
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&address).await.is_err() {
            if tokio::time::Instant::now() > deadline || broker.thread.is_finished() {
                anyhow::bail!("the embedded Kafka broker did not start on {address}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(broker)
    }
}

/// Builds the broker, tells `built` how that went, then serves until `stop` fires.
async fn serve(
    url: Url,
    built: tokio::sync::oneshot::Sender<Result<(), String>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let result = async {
        Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(111)
            .cluster_id("edm-lab")
            .incarnation_id(uuid::Uuid::new_v4())
            .advertised_listener(url.clone())
            .storage(Url::parse("memory://tansu/").map_err(|e| format!("{e}"))?)
            .listener(url)
            .silent(true)
            .build()
            .await
            .map_err(|e| format!("{e:?}"))
    }
    .await;
    let mut broker = match result {
        Ok(broker) => {
            let _ = built.send(Ok(()));
            broker
        }
        Err(error) => {
            let _ = built.send(Err(error));
            return;
        }
    };
    tokio::select! {
        served = broker.serve(tokio::time::Instant::now()) => {
            if let Err(error) = served {
                tracing::error!(?error, "embedded Kafka broker stopped");
            }
        }
        _ = stop => {}
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The runtime shuts down when its thread returns; the thread is not joined here
        // (drop may run inside the services' runtime).
    }
}

/// A directory for one lab run's SQLite files.
pub fn data_dir(id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("edm-lab-{id}"))
}

/// A `sqlite:` URL for `file` in `dir`.
pub fn sqlite_url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}
