//! Scale-out: topics with 3 partitions and two instances of each consumer as separate
//! processes; one instance is killed and another added mid-run. Rebalances move
//! partitions between instances; nothing may be lost or done twice.

mod common;

use std::time::{Duration, Instant};

use common::process::{EdmProcess, Stack};
use common::servers::free_port;
use common::{LabConfig, Placed, init_logs, order_created};

const ORDERS: usize = 300;
const IN_FLIGHT: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_per_consumer_with_one_killed_and_one_added_lose_and_double_nothing() {
    init_logs();
    let config = LabConfig::fresh();
    config.prepare_with_partitions(3).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut processes = vec![EdmProcess::spawn(
        &config,
        "order-service",
        &["--listen", &listen],
    )];
    for _ in 0..2 {
        processes.push(EdmProcess::spawn(&config, "inventory-consumer", &[]));
        processes.push(EdmProcess::spawn(
            &config,
            "payment-consumer",
            &["--decline-rate", "0.3"],
        ));
        processes.push(EdmProcess::spawn(&config, "order-consumer", &[]));
    }
    let stack = Stack::attach(&config, port).await;

    let mut placed: Vec<Placed> = Vec::new();
    let (mut killed, mut added) = (false, false);
    while placed.len() < ORDERS {
        if placed.len() >= ORDERS / 3 && !killed {
            // Kill the first inventory consumer once it is busy; its partitions move. It may
            // have been given its partitions after its twin had handled every order placed
            // so far, so orders keep coming until it has logged some steps of its own.
            let victim = processes
                .iter_mut()
                .find(|p| p.name == "inventory-consumer")
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while victim.steps() < 5 {
                assert!(
                    Instant::now() < deadline,
                    "the first inventory consumer did no work in 60 s ({} orders):\n{}",
                    placed.len(),
                    victim.output()
                );
                let next = placed.len()..placed.len() + IN_FLIGHT;
                placed.extend(stack.place(next).await);
                // A round of orders every 100 ms, not as fast as possible: the log only
                // grows while the victim joins its group, and 60 s of orders is enough.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            victim.kill9();
            killed = true;
        }
        if placed.len() >= 2 * ORDERS / 3 && !added {
            // A new order-consumer instance joins: partitions are reassigned again.
            processes.push(EdmProcess::spawn(&config, "order-consumer", &[]));
            added = true;
        }
        let next = placed.len()..placed.len() + IN_FLIGHT;
        placed.extend(stack.place(next).await);
    }

    let (completed, cancelled) = stack.check(&placed).await;
    assert_eq!(completed + cancelled, placed.len());
    assert!(completed > 0 && cancelled > 0);

    // Work was really spread: the surviving instances logged rebalances and saga steps.
    let survivors: Vec<&EdmProcess> = processes
        .iter()
        .filter(|p| p.name != "order-service")
        .collect();
    let assigned = survivors
        .iter()
        .filter(|p| p.output().contains("partitions assigned"))
        .count();
    assert!(
        assigned >= 6,
        "only {assigned} consumer instances got partitions"
    );
    let reassigned = processes
        .iter()
        .filter(|p| p.name == "inventory-consumer")
        .any(|p| p.output().matches("partitions assigned").count() >= 2);
    assert!(
        reassigned,
        "no inventory consumer took over partitions after the kill"
    );
    eprintln!("{completed} completed, {cancelled} cancelled over 3 partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_calls_stay_within_the_connection_limit() {
    let mut config = LabConfig::fresh();
    config.dynamo.dynamodb_connections = 2;
    config.prepare().await;
    let orders = edm::store::orders::OrderStore::connect(&config.dynamo)
        .await
        .expect("order store");

    // 30 orders stored at once through 2 connections, while a sampler watches.
    let sampling = std::sync::atomic::AtomicBool::new(true);
    let most_in_flight = async {
        let mut most = 0;
        while sampling.load(std::sync::atomic::Ordering::Relaxed) {
            most = most.max(orders.requests_in_flight());
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        most
    };
    let stores = async {
        let results = futures_util::future::join_all((0..30).map(|n| {
            let tx = uuid::Uuid::new_v4().to_string();
            let event = order_created(&tx, &format!("limit-{n}"), 1, 1);
            let orders = &orders;
            async move { orders.create(&event).await }
        }))
        .await;
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        results
    };
    let (most, results) = tokio::join!(most_in_flight, stores);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(most, 2, "calls in flight at most: {most}");
    let stored = orders.all_orders().await.expect("scan");
    assert_eq!(stored.len(), 30);
}
