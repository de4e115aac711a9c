//! Orchestrated sagas against the real servers: the order service starts them, the
//! orchestrator drives them by commands and replies, and the books come out exactly as in
//! choreography — for the happy path, a declined payment, too little stock and an unknown
//! item; a silent payment service ends the saga with TIMEOUT and its late answers change
//! nothing; redelivered replies change nothing.

mod common;

use std::time::Duration;

use common::{Lab, Services};
use edm::kafka::Record;
use edm::orchestration::SagaStyle;
use edm::orchestration::messages::{Reply, ReplyKind};
use edm::orchestration::saga::{HistoryEntry, Saga, SagaState};
use edm::services::payment_consumer::{self, Gateway};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The orchestrated lab: every service, the order service starting orchestrated sagas.
fn orchestrated(gateway: Gateway) -> Services {
    Services::all(gateway).with_saga(SagaStyle::Orchestration)
}

async fn saga(lab: &Lab, tx: &str) -> Saga {
    lab.orders
        .saga(tx)
        .await
        .expect("order store")
        .expect("the order has a saga")
}

/// The states a saga went through, in order.
fn states(saga: &Saga) -> Vec<String> {
    saga.history
        .iter()
        .map(|entry| HistoryEntry::parse(entry).expect("history entry").state)
        .collect()
}

fn text<'a>(order: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    order.get(key).and_then(Value::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrated_sagas_keep_the_books_exact_and_compensate_in_reverse_order() {
    let lab = Lab::start(orchestrated(Gateway::DeclineUser("bob".into()))).await;
    let before = lab.stock_of(2).await;

    let (status, answer) = lab.post_order(&common::order_body("alice", 2, 3)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["saga"], "orchestration");
    let paid = answer["transaction_id"].as_str().expect("tx").to_string();
    let declined = lab.place("bob", 2, 4).await;
    let too_many = lab.place("carol", 2, 1_000_000).await;
    let unknown = lab.place("dave", 999, 1).await;

    let order = lab.wait_terminal(&paid, "alice").await;
    assert_eq!(text(&order, "status"), Some("ORDER_COMPLETE"));
    assert_eq!(text(&order, "saga_state"), Some("COMPLETE"));
    assert_eq!(lab.history_of(&paid).await, [-3]);
    assert_eq!(
        states(&saga(&lab, &paid).await),
        ["RESERVING_STOCK", "TAKING_PAYMENT", "COMPLETE"]
    );

    let order = lab.wait_terminal(&declined, "bob").await;
    assert_eq!(text(&order, "status"), Some("ORDER_CANCEL"));
    assert_eq!(text(&order, "reason"), Some("PAYMENT_DECLINED"));
    assert_eq!(lab.history_of(&declined).await, [-4, 4]);
    // Reverse order: the payment failed last, so the stock taken before it goes back.
    assert_eq!(
        states(&saga(&lab, &declined).await),
        [
            "RESERVING_STOCK",
            "TAKING_PAYMENT",
            "RELEASING_STOCK",
            "CANCELLED"
        ]
    );

    for (tx, user, reason) in [
        (&too_many, "carol", "OUT_OF_STOCK"),
        (&unknown, "dave", "UNKNOWN_ITEM"),
    ] {
        let order = lab.wait_terminal(tx, user).await;
        assert_eq!(text(&order, "status"), Some("ORDER_CANCEL"));
        assert_eq!(text(&order, "reason"), Some(reason));
        assert!(lab.history_of(tx).await.is_empty(), "{reason}");
        assert_eq!(
            states(&saga(&lab, tx).await),
            ["RESERVING_STOCK", "CANCELLED"]
        );
    }
    assert_eq!(lab.stock_of(2).await, before - 3);

    // `edm trace` shows the commands, the replies and the orchestrator's state changes.
    let output = common::process::edm_command(&lab.config)
        .args(["trace", &declined])
        .output()
        .expect("edm trace");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let rows: Vec<String> = stdout
        .lines()
        .skip(1)
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.get(2) {
                Some(&"saga") => format!("saga {}", words[3]),
                _ => words.get(2).unwrap_or(&"").to_string(),
            }
        })
        .collect();
    assert_eq!(
        rows,
        [
            "saga RESERVING_STOCK",
            "RESERVE_STOCK",
            "STOCK_RESERVED",
            "saga TAKING_PAYMENT",
            "TAKE_PAYMENT",
            "PAYMENT_DECLINED",
            "saga RELEASING_STOCK",
            "RELEASE_STOCK",
            "STOCK_RELEASED",
            "saga CANCELLED"
        ],
        "{stdout}"
    );
    assert!(stdout.contains("by orchestrator"), "{stdout}");

    // Redelivered replies — each saga's again, and answers that no longer fit — change
    // nothing.
    let again = |kind, tx: &str| Reply {
        total_price: Some(1),
        ..Reply::to(kind, tx)
    };
    let replies = [
        again(ReplyKind::StockReserved, &paid),
        again(ReplyKind::PaymentApproved, &paid),
        again(ReplyKind::PaymentDeclined, &paid),
        again(ReplyKind::StockReserved, &declined),
        again(ReplyKind::PaymentDeclined, &declined),
        again(ReplyKind::StockReleased, &declined),
        again(ReplyKind::StockReserved, &too_many),
    ];
    let records: Vec<Record> = replies
        .iter()
        .map(|reply| reply.record(&lab.kafka.topics))
        .collect();
    let histories = [
        saga(&lab, &paid).await.history,
        saga(&lab, &declined).await.history,
        saga(&lab, &too_many).await.history,
    ];
    lab.send_all(&records).await;
    // The replies topic has one partition: a saga placed now ends after they are handled.
    let marker = lab.place("erin", 1, 1).await;
    lab.wait_terminal(&marker, "erin").await;
    assert_eq!(saga(&lab, &paid).await.history, histories[0]);
    assert_eq!(saga(&lab, &declined).await.history, histories[1]);
    assert_eq!(saga(&lab, &too_many).await.history, histories[2]);
    assert_eq!(lab.history_of(&paid).await, [-3]);
    assert_eq!(lab.history_of(&declined).await, [-4, 4]);
    assert_eq!(lab.stock_of(2).await, before - 3);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_payment_service_times_out_and_its_late_answer_changes_nothing() {
    let services = Services {
        payment: None,
        orchestrator: Some(Duration::from_millis(700)),
        ..orchestrated(Gateway::Accept)
    };
    let lab = Lab::start(services).await;
    let before = lab.stock_of(3).await;
    let tx = lab.place("frank", 3, 2).await;

    let order = lab.wait_terminal(&tx, "frank").await;
    assert_eq!(text(&order, "status"), Some("ORDER_CANCEL"));
    assert_eq!(text(&order, "reason"), Some("TIMEOUT"));
    assert_eq!(lab.history_of(&tx).await, [-2, 2], "the stock goes back");
    assert_eq!(lab.stock_of(3).await, before);
    let ended = saga(&lab, &tx).await;
    assert_eq!(ended.state, SagaState::Cancelled);
    assert_eq!(
        states(&ended),
        [
            "RESERVING_STOCK",
            "TAKING_PAYMENT",
            "TAKING_PAYMENT",
            "RELEASING_STOCK",
            "CANCELLED"
        ],
        "one retry, then the compensation"
    );

    // The payment service comes back: it takes the payment it was asked for (twice: the
    // retry), then voids it, as the orchestrator asked when the step timed out.
    let stop = CancellationToken::new();
    let kafka = lab.kafka.clone();
    let payment = tokio::spawn({
        let stop = stop.clone();
        async move { payment_consumer::consume(&kafka, Gateway::Accept, stop).await }
    });
    let replies: Vec<Reply> = common::read_topic(&lab.kafka, &lab.kafka.topics.saga_replies, 5)
        .await
        .into_iter()
        .map(|(value, _)| serde_json::from_value(value).expect("a reply"))
        .collect();
    let kinds: Vec<ReplyKind> = replies.iter().map(|r| r.reply).collect();
    assert_eq!(
        kinds[2..],
        [
            ReplyKind::PaymentApproved,
            ReplyKind::PaymentApproved,
            ReplyKind::PaymentCancelled
        ]
    );
    assert_eq!(
        replies[4].refunded,
        Some(true),
        "the late payment is refunded"
    );

    // The late answers reached the orchestrator (one partition: a saga placed now ends
    // after them) and changed nothing.
    let marker = lab.place("grace", 1, 1).await;
    let order = lab.wait_terminal(&marker, "grace").await;
    assert_eq!(text(&order, "status"), Some("ORDER_COMPLETE"));
    let order = lab.wait_terminal(&tx, "frank").await;
    assert_eq!(text(&order, "status"), Some("ORDER_CANCEL"));
    assert_eq!(text(&order, "reason"), Some("TIMEOUT"));
    assert_eq!(saga(&lab, &tx).await.history, ended.history);
    assert_eq!(lab.history_of(&tx).await, [-2, 2]);
    assert_eq!(lab.stock_of(3).await, before);

    stop.cancel();
    payment.await.expect("join").expect("payment consumer");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sagas_timing_out_at_once_are_logged_in_a_few_lines_and_all_end() {
    // The payment service is away and `edm orchestrator` runs as a process, as a student
    // runs it: 40 sagas time out together, twice each (the retry, then the compensation).
    const SAGAS: usize = 40;
    let services = Services {
        payment: None,
        orchestrator: None,
        ..orchestrated(Gateway::Accept)
    };
    let lab = Lab::start(services).await;
    let mut orchestrator =
        common::process::EdmProcess::spawn(&lab.config, "orchestrator", &["--step-timeout", "1"]);
    let before = lab.stock_of(4).await;
    let users: Vec<String> = (0..SAGAS).map(|n| format!("henry-{n}")).collect();
    let placed =
        futures_util::future::join_all(users.iter().map(|user| lab.place(user, 4, 1))).await;
    for (n, tx) in placed.iter().enumerate() {
        let order = lab.wait_terminal(tx, &format!("henry-{n}")).await;
        assert_eq!(text(&order, "reason"), Some("TIMEOUT"), "{tx}");
    }
    assert_eq!(
        lab.stock_of(4).await,
        before,
        "every reservation given back"
    );
    orchestrator.terminate();

    let log = orchestrator.output();
    let rounds = timeout_rounds(&log);
    // Each round names ten sagas at most and counts the rest (80 lines by name without
    // the limit); between them, every timeout is told: each saga's two (the retry, then
    // the compensation). How many rounds the sagas spread over depends on how fast the
    // orchestrator took their replies, so the test counts per round.
    for round in &rounds {
        assert!(round.named <= 10, "a round named {}:\n{log}", round.named);
        assert!(round.more == 0 || round.named == 10, "{round:?}:\n{log}");
    }
    let told: usize = rounds.iter().map(|r| r.named + r.more).sum();
    assert_eq!(told, 2 * SAGAS, "timeouts told:\n{log}");
    assert!(
        rounds.iter().any(|r| r.more > 0),
        "no round counted sagas instead of naming them:\n{log}"
    );
    lab.stop().await;
}

/// What one round of the orchestrator's timeout watch logged: sagas named, and sagas
/// counted in its summary line.
#[derive(Debug, Default)]
struct TimeoutRound {
    named: usize,
    more: usize,
}

/// The timeout rounds in an orchestrator's log. A round logs its lines in one loop, so
/// they are microseconds apart; rounds are a sleep of at least 100 ms apart (a quarter of
/// the step timeout, at least 100 ms).
fn timeout_rounds(log: &str) -> Vec<TimeoutRound> {
    let mut rounds: Vec<TimeoutRound> = Vec::new();
    let mut last: Option<chrono::DateTime<chrono::FixedOffset>> = None;
    for line in log.lines() {
        let named = line.contains("no reply to ");
        let more = line
            .split_once(" more sagas had no reply")
            .and_then(|(before, _)| before.rsplit(' ').next()?.parse::<usize>().ok());
        if !named && more.is_none() {
            continue;
        }
        let at = line
            .split_whitespace()
            .next()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .expect("a timestamp at the start of each line");
        if last.is_none_or(|last| (at - last).num_milliseconds() > 50) {
            rounds.push(TimeoutRound::default());
        }
        last = Some(at);
        let round = rounds.last_mut().expect("a round");
        round.named += usize::from(named);
        round.more += more.unwrap_or(0);
    }
    rounds
}
