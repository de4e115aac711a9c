//! A broker that goes away and comes back, and one replaced by another cluster, as a
//! running service lives them (issue 19.2). Both run on a private `edm broker`: the
//! second needs a broker that comes back with another cluster id, which Apache Kafka
//! started the test script's way never does (it is formatted with the compose stack's
//! fixed cluster id); the first checks what edm's clients log, whatever the broker.

mod common;

use std::time::{Duration, Instant};

use common::LabConfig;
use common::process::EdmProcess;
use common::servers::{PrivateServer, free_port};

/// A lab on a private broker at `port`.
fn config_on(port: u16) -> LabConfig {
    let mut config = LabConfig::fresh();
    config.kafka.bootstrap_servers = format!("127.0.0.1:{port}");
    config
}

/// Lines at WARN or ERROR level.
fn complaints(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_is_one_warning_when_it_begins_and_one_line_when_it_ends() {
    let dir = std::env::temp_dir().join(format!("edm-outage-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = dir.to_string_lossy().into_owned();
    let port = free_port();
    let mut broker = PrivateServer::broker_on(port, &["--data-dir", &data_dir]);
    let config = config_on(port);
    config.prepare().await;
    let mut payment = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]);
    // Both loops (events and commands) at work.
    let deadline = Instant::now() + Duration::from_secs(30);
    while payment.output().matches("partitions assigned").count() < 2 {
        assert!(Instant::now() < deadline, "{}", payment.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    broker.terminate();
    // Several of librdkafka's reconnection rounds (backoff up to 10 s), from each of the
    // service's six clients.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let _broker = PrivateServer::broker_on(port, &["--data-dir", &data_dir]);
    payment
        .wait_for_output("answers again", Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let output = payment.output();
    let complaints = complaints(&output);
    assert_eq!(
        complaints.len(),
        1,
        "one warning for the outage, nothing else:\n{output}"
    );
    assert!(complaints[0].contains("cannot be reached"), "{output}");
    assert_eq!(output.matches("answers again").count(), 1, "{output}");
    let status = payment.terminate();
    assert!(
        status.success(),
        "the service goes on after the outage: {status}\n{output}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_whose_cluster_is_replaced_exit_1_saying_what_to_do() {
    let port = free_port();
    let mut broker = PrivateServer::broker_on(port, &[]);
    let config = config_on(port);
    config.prepare().await;
    let order_port = free_port();
    let listen = format!("127.0.0.1:{order_port}");
    let mut services = vec![
        EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]),
        EdmProcess::spawn(&config, "order-service", &["--listen", &listen]),
    ];
    services[0]
        .wait_for_output("partitions assigned", Duration::from_secs(30))
        .await;
    services[1]
        .wait_for_output("order service listening", Duration::from_secs(30))
        .await;

    // Restarted without --data-dir: a new cluster id, and nothing of the old one.
    broker.terminate();
    let _replacement = PrivateServer::broker_on(port, &[]);
    for service in &mut services {
        let status = service.wait_exit(Duration::from_secs(60));
        let output = service.output();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "{} must end with status 1:\n{output}",
            service.name
        );
        assert_eq!(
            output.matches("was replaced").count(),
            1,
            "said once:\n{output}"
        );
        assert!(
            output.contains("Run `edm create-topics`, then start this service again"),
            "{output}"
        );
    }
}
