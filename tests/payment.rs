//! The payment consumer answers each transaction once: an INVENTORY_RESERVED delivered
//! again — here to a second payment consumer, started with the other gateway setting as
//! the course has students do — gets the answer the first one gave, and a completed order
//! never gets its stock back.

mod common;

use std::time::{Duration, Instant};

use common::process::EdmProcess;
use common::{Lab, LabConfig, Services};
use edm::services::payment_consumer::Gateway;
use edm::tools::trace;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_payment_gets_the_answer_given_the_first_time() {
    let config = LabConfig::fresh();
    let lab = Lab::start_with(
        config.clone(),
        Services {
            payment: None,
            ..Services::all(Gateway::Accept)
        },
    )
    .await;
    let mut accepting = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]);
    let tx = lab.place("alice", 2, 4).await;
    let order = lab.wait_terminal(&tx, "alice").await;
    assert_eq!(order["status"], "ORDER_COMPLETE");
    assert_eq!(lab.history_of(&tx).await, [-4]);
    assert!(accepting.terminate().success());

    // The gateway now declines; the INVENTORY_RESERVED of the paid order comes again.
    let declining = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "false"]);
    let reserved = trace::trace(&lab.kafka, &tx)
        .await
        .expect("trace")
        .into_iter()
        .find(|e| e.status == "INVENTORY_RESERVED")
        .expect("the saga's INVENTORY_RESERVED");
    let (_, offset) = reserved.position.expect("found on a topic");
    let again = common::read_topic(&lab.kafka, &reserved.topic, (offset + 1) as usize)
        .await
        .pop()
        .expect("the event")
        .0;
    assert_eq!(again["transaction_id"], tx.as_str());
    common::send_json(&lab.producer, &reserved.topic, Some(&tx), &again).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while !declining.output().contains(&tx) {
        assert!(
            Instant::now() < deadline,
            "the second consumer never saw the event:\n{}",
            declining.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        declining.output().contains("the first answer stands"),
        "{}",
        declining.output()
    );
    // Its answer went out again as PAYMENT_COMPLETE; give the saga time to go wrong.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = trace::trace(&lab.kafka, &tx).await.expect("trace");
        let completes = events
            .iter()
            .filter(|e| e.status == "PAYMENT_COMPLETE")
            .count();
        assert!(
            !events.iter().any(|e| e.status == "ORDER_CANCEL"),
            "a paid order was cancelled: {events:?}"
        );
        if completes == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no second PAYMENT_COMPLETE: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A new transaction gets the gateway's answer of now.
    let declined = lab.place("bob", 2, 1).await;
    let order = lab.wait_terminal(&declined, "bob").await;
    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("ORDER_CANCEL"), Some("PAYMENT_DECLINED"))
    );
    // Its stock came back: the inventory consumer has handled bob's ORDER_CANCEL, and so
    // everything the order consumer sent before it (one partition per topic), which
    // includes whatever the repeated PAYMENT_COMPLETE made it send for alice.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab.history_of(&declined).await != [-1, 1] {
        assert!(Instant::now() < deadline, "bob's stock never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        lab.history_of(&tx).await,
        [-4],
        "a paid order's stock stays taken"
    );
    assert_eq!(
        lab.wait_terminal(&tx, "alice").await["status"],
        "ORDER_COMPLETE"
    );
    drop(declining);
    lab.stop().await;
}
