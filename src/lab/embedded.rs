//! What `edm lab` runs when no servers are configured: edm's own Kafka-protocol broker
//! inside the process ([`crate::broker`]) — so the lab drives the same rdkafka code as the
//! real stack — and SQLite files for the stores.

use std::path::PathBuf;

use crate::broker::{Broker, BrokerConfig};

/// The lab's broker, on a runtime (and thread) of its own, so that its answers do not
/// queue behind the services' tasks.
pub struct EmbeddedBroker {
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub address: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EmbeddedBroker {
    /// Starts the broker on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("edm-broker")
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("edm-broker".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let config = BrokerConfig::new(([127, 0, 0, 1], 0).into());
                    match Broker::start(&config).await {
                        Ok(broker) => {
                            let _ = started_tx.send(Ok(broker.bootstrap_servers().to_string()));
                            let _ = stopped.await;
                            broker.stop().await;
                        }
                        Err(error) => {
                            let _ = started_tx.send(Err(error));
                        }
                    }
                })
            })?;
        match started.await {
            Ok(Ok(address)) => Ok(Self {
                address,
                stop: Some(stop),
            }),
            Ok(Err(error)) => anyhow::bail!("cannot start the embedded Kafka broker: {error}"),
            Err(_) => anyhow::bail!("the embedded Kafka broker stopped while starting"),
        }
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
