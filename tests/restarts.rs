//! Restarts as students make them, with every service a process: a service killed and
//! started again at once gets its partitions back at once (static membership), and one
//! stopped cleanly hands them on at once. Runs on whichever broker the pass is for.

mod common;

use std::time::{Duration, Instant};

use common::process::{EdmProcess, Stack};
use common::servers::free_port;
use common::{LabConfig, init_logs};

/// Waits until `placed`'s order is final; how long that took.
async fn time_to_final(stack: &Stack, placed: &[common::Placed], limit: Duration) -> Duration {
    let started = Instant::now();
    stack.check_within(placed, limit).await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_consumer_killed_and_started_again_takes_the_next_order_at_once() {
    init_logs();
    let config = LabConfig::fresh();
    config.prepare().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut processes = [
        EdmProcess::spawn(
            &config,
            "order-service",
            &["--listen", &listen, "--saga", "orchestration"],
        ),
        EdmProcess::spawn(&config, "inventory-consumer", &[]),
        EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]),
        EdmProcess::spawn(&config, "orchestrator", &[]),
    ];
    let stack = Stack::attach(&config, port).await;
    let first = stack.place(0..1).await;
    time_to_final(&stack, &first, Duration::from_secs(60)).await;

    // kill -9 and started again at once, as a student restarts a terminal's command. The
    // killed member's session (6 s in these tests, 45 s by default) is still running.
    let payment = &mut processes[2];
    payment.kill9();
    payment.restart();
    let next = stack.place(1..2).await;
    let took = time_to_final(&stack, &next, Duration::from_secs(60)).await;
    eprintln!("the order after the restart was final in {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "the order after the restart took {took:?} (the old member's session is 6 s):\n{}",
        processes[2].output()
    );
    let (completed, cancelled) = stack.check(&[first, next].concat()).await;
    assert_eq!(
        (completed, cancelled),
        (2, 0),
        "no timeout, no compensation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_stopped_cleanly_hands_its_partitions_on_at_once() {
    init_logs();
    let config = LabConfig::fresh();
    config.prepare_with_partitions(2).await;
    let mut first = EdmProcess::spawn(&config, "inventory-consumer", &[]);
    let second = EdmProcess::spawn(&config, "inventory-consumer", &[]);
    // Wait until the events' topic is split between them: each was last assigned one of
    // its two partitions (the commands' topic is assigned in lines of its own).
    let prefix = config.kafka.topic_prefix.clone();
    let events = [
        format!("{prefix}inventory/0"),
        format!("{prefix}inventory/1"),
    ];
    let holds_one = |p: &EdmProcess| {
        p.output()
            .lines()
            .rev()
            .find(|l| {
                l.contains("partitions assigned") && l.contains(&format!("{prefix}inventory/"))
            })
            .is_some_and(|l| events.iter().filter(|e| l.contains(e.as_str())).count() == 1)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(holds_one(&first) && holds_one(&second)) {
        assert!(
            Instant::now() < deadline,
            "the events' partitions were never split:\n{}\n{}",
            first.output(),
            second.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each got one partition of the events' topic; once the first stops, the second is
    // assigned both.
    let seen = second.output().len();
    let status = first.terminate();
    assert!(status.success(), "{}", first.output());
    let stopped = Instant::now();
    let has_both = |output: &str| {
        output[seen..].lines().any(|l| {
            l.contains("partitions assigned") && events.iter().all(|p| l.contains(p.as_str()))
        })
    };
    while !has_both(&second.output()) {
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "the second instance never got both partitions:\n{}",
            second.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = stopped.elapsed();
    eprintln!("the partitions moved {took:?} after the stop");
    assert!(
        took < Duration::from_secs(3),
        "the partitions moved only after {took:?} (a session is 6 s): the stopped instance did not leave"
    );
}

/// The orchestrated stack with `orchestrators` orchestrators (step timeout 2 s, every
/// payment accepted) on `partitions` partitions; the first orchestrator is killed after
/// half the orders and, if `restart`, started again at once. Every saga must complete:
/// each participant answered in time, so no step may time out, whoever reads the replies.
async fn kill_an_orchestrator(orchestrators: usize, partitions: i32, restart: bool) {
    const ORDERS: usize = 100;
    const IN_FLIGHT: usize = 10;
    init_logs();
    let config = LabConfig::fresh();
    config.prepare_with_partitions(partitions).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut processes = vec![
        EdmProcess::spawn(
            &config,
            "order-service",
            &["--listen", &listen, "--saga", "orchestration"],
        ),
        EdmProcess::spawn(&config, "inventory-consumer", &[]),
        EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]),
    ];
    for _ in 0..orchestrators {
        processes.push(EdmProcess::spawn(
            &config,
            "orchestrator",
            &["--step-timeout", "2"],
        ));
    }
    let stack = Stack::attach(&config, port).await;
    let mut placed = stack.place(0..IN_FLIGHT).await;
    while placed.len() < ORDERS {
        if placed.len() == ORDERS / 2 {
            let victim = &mut processes[3];
            victim.kill9();
            if restart {
                victim.restart();
            }
        }
        let next = placed.len()..placed.len() + IN_FLIGHT;
        placed.extend(stack.place(next).await);
    }
    let (completed, cancelled) = stack.check(&placed).await;
    let timeouts: Vec<String> = processes[3..]
        .iter()
        .flat_map(|p| {
            p.output()
                .lines()
                .filter(|l| l.contains("no reply to"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        (completed, cancelled),
        (ORDERS, 0),
        "every participant answered, yet steps timed out:\n{}",
        timeouts.join("\n")
    );
    // Its first line says which saga the orders start.
    let order_service = processes[0].output();
    assert!(
        order_service.contains("orchestration: each order sends RESERVE_STOCK"),
        "{order_service}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrator_killed_and_started_again_cancels_no_saga_that_was_answered() {
    kill_an_orchestrator(1, 1, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_orchestrators_one_killed_the_other_cancels_no_saga_that_was_answered() {
    kill_an_orchestrator(2, 2, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrator_that_cannot_run_its_timeout_watch_exits_with_the_cause() {
    // A partitioner edm cannot compute: the watch could not tell which reply partition
    // holds a saga's replies, so it cannot judge any timeout.
    let config = LabConfig::fresh();
    config.prepare().await;
    let output = common::process::edm_command(&config)
        .args(["orchestrator", "-X", "partitioner=random"])
        .output()
        .expect("run edm orchestrator");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("timeout watch") && stderr.contains("partitioner"),
        "{stderr}"
    );
}
