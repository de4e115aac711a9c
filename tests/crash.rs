//! Crashes: the consumers (or, orchestrated, the orchestrator) run as separate `edm`
//! processes; one is killed with SIGKILL in the middle of a few hundred orders and started
//! again. The books must still be exact,
//! and SIGTERM must stop every process cleanly with exit code 0.

mod common;

use std::time::Duration;

use common::process::{EdmProcess, Stack};
use common::servers::free_port;
use common::{LabConfig, init_logs};

const ORDERS: usize = 300;
const IN_FLIGHT: usize = 8;
const KILL_AFTER: usize = 100;

async fn crash_and_restart(victim: &str, saga: &str) {
    init_logs();
    let config = LabConfig::fresh();
    config.prepare().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut processes = vec![
        EdmProcess::spawn(
            &config,
            "order-service",
            &["--listen", &listen, "--saga", saga],
        ),
        EdmProcess::spawn(&config, "inventory-consumer", &[]),
        EdmProcess::spawn(&config, "payment-consumer", &["--decline-rate", "0.3"]),
        match saga {
            "orchestration" => EdmProcess::spawn(&config, "orchestrator", &[]),
            _ => EdmProcess::spawn(&config, "order-consumer", &[]),
        },
    ];
    let stack = Stack::attach(&config, port).await;

    let mut placed = Vec::new();
    let mut killed_after = None;
    while placed.len() < ORDERS {
        if placed.len() >= KILL_AFTER && killed_after.is_none() {
            let process = processes.iter_mut().find(|p| p.name == victim).unwrap();
            // Kill it once it is busy: some sagas done, many still queued.
            let handled = process.wait_busy(10).await;
            process.kill9();
            killed_after = Some(handled);
            tokio::time::sleep(Duration::from_millis(300)).await;
            process.restart();
        }
        let next = placed.len()..placed.len() + IN_FLIGHT;
        placed.extend(stack.place(next).await);
    }

    let (completed, cancelled) = stack.check(&placed).await;
    eprintln!(
        "{victim} killed after logging {} saga steps; {completed} completed, {cancelled} cancelled",
        killed_after.unwrap_or(0)
    );
    assert!(
        killed_after.is_some_and(|handled| handled > 0),
        "{victim} was killed before it did any work"
    );
    assert_eq!(completed + cancelled, placed.len());
    assert!(completed > 0 && cancelled > 0);

    for process in &mut processes {
        let status = process.terminate();
        assert!(
            status.success(),
            "{} exited with {status} on SIGTERM:\n{}",
            process.name,
            process.output()
        );
    }
    let victim_log = processes
        .iter()
        .find(|p| p.name == victim)
        .unwrap()
        .output();
    assert!(
        victim_log.contains("stopping: committing offsets"),
        "{victim_log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_inventory_consumer_mid_run_loses_and_doubles_nothing() {
    crash_and_restart("inventory-consumer", "choreography").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_order_consumer_mid_run_loses_and_doubles_nothing() {
    crash_and_restart("order-consumer", "choreography").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_orchestrator_mid_run_loses_and_doubles_nothing() {
    crash_and_restart("orchestrator", "orchestration").await;
}
