//! `edm broker`: the edm-broker crate's broker in a terminal of its own, for students
//! without Docker. The broker itself (protocol, logs, groups, limits) is in
//! `crates/edm-broker`; this module only starts it, says how to use it and stops it on
//! Ctrl-C.

use edm_broker::{Broker, BrokerConfig};
use tokio_util::sync::CancellationToken;

/// Serves until Ctrl-C (or SIGTERM), then closes every connection.
pub async fn command(config: BrokerConfig) -> anyhow::Result<()> {
    run(&config, crate::shutdown::on_signal()).await
}

/// Serves until `shutdown`, then closes every connection.
pub async fn run(config: &BrokerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let broker = Broker::start(config)
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "cannot listen on {}: the address is in use. Is the compose stack's Kafka (or \
                 another `edm broker`) running? Stop it, or pick another port with --listen",
                config.listen
            ),
            _ => anyhow::anyhow!("cannot listen on {}: {error}", config.listen),
        })?;
    let keeps = match &config.data_dir {
        Some(dir) => format!("Ctrl-C stops it; its data stays in {}", dir.display()),
        None => "Ctrl-C stops it and drops its data (--data-dir keeps it)".to_string(),
    };
    tracing::info!(
        cluster_id = broker.cluster_id(),
        "edm broker listening on {}: start the services with --bootstrap-servers {} \
         (the default, if it is 127.0.0.1:19092); {keeps}",
        broker.local_addr(),
        broker.bootstrap_servers()
    );
    shutdown.cancelled().await;
    broker.stop().await;
    tracing::info!("edm broker stopped");
    Ok(())
}
