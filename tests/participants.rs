//! Orchestration's participants against the real servers: the inventory and the payment
//! service answer the orchestrator's commands with replies, through the same store steps
//! and the same memory of decisions as the events, so a redelivered command changes nothing
//! and gets the same reply.

mod common;

use common::{Lab, Services, order_body, stock_by_item};
use edm::consumer::Incoming;
use edm::kafka::Record;
use edm::orchestration::messages::{Command, CommandKind, Reply, ReplyKind};
use edm::services::payment_consumer::Gateway;
use serde_json::json;

fn command(kind: CommandKind, tx: &str, item: i64, quantity: i64) -> Command {
    command_of("orchestrated", kind, tx, item, quantity)
}

fn command_of(user: &str, kind: CommandKind, tx: &str, item: i64, quantity: i64) -> Command {
    let mut raw = order_body(user, item, quantity);
    raw["command"] = json!(kind);
    raw["transaction_id"] = json!(tx);
    Command::parse(Some(raw.to_string().as_bytes())).expect("command")
}

async fn send(lab: &Lab, commands: &[Command]) {
    send_to(lab, &lab.kafka.topics.inventory_commands, commands).await
}

async fn send_to(lab: &Lab, topic: &str, commands: &[Command]) {
    let records: Vec<Record> = commands
        .iter()
        .map(|c| Record {
            topic: topic.to_string(),
            key: Some(c.transaction_id.clone()),
            payload: c.to_payload(),
            headers: Vec::new(),
        })
        .collect();
    lab.send_all(&records).await;
}

async fn replies(lab: &Lab, count: usize) -> Vec<Reply> {
    common::read_topic(&lab.kafka, &lab.kafka.topics.saga_replies, count)
        .await
        .into_iter()
        .map(|(value, _)| Reply::parse(Some(value.to_string().as_bytes())).expect("a reply"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_answers_commands_once_whatever_is_redelivered() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let before = stock_by_item(&lab.stock).await[&2];
    let (paid, rolled_back, too_many, unknown) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let reserve = |tx: &str, item, quantity| command(CommandKind::ReserveStock, tx, item, quantity);
    send(
        &lab,
        &[
            reserve(&paid, 2, 3),
            reserve(&rolled_back, 2, 4),
            reserve(&too_many, 2, 10_000),
            reserve(&unknown, 999, 1),
            // Redelivered: the same reply, stock unchanged.
            reserve(&paid, 2, 3),
            // The compensation of the second saga, and the same again.
            command(CommandKind::ReleaseStock, &rolled_back, 2, 4),
            command(CommandKind::ReleaseStock, &rolled_back, 2, 4),
        ],
    )
    .await;

    let got = replies(&lab, 7).await;
    let kinds: Vec<(String, ReplyKind)> = got
        .iter()
        .map(|r| (r.transaction_id.clone(), r.reply))
        .collect();
    let price = 30_000; // item 2, the cap
    assert_eq!(got[0].total_price, Some(3 * price));
    assert_eq!(got[4], got[0], "a redelivered command gets the first reply");
    assert_eq!(
        kinds,
        vec![
            (paid.clone(), ReplyKind::StockReserved),
            (rolled_back.clone(), ReplyKind::StockReserved),
            (too_many.clone(), ReplyKind::StockRejected),
            (unknown.clone(), ReplyKind::StockRejected),
            (paid.clone(), ReplyKind::StockReserved),
            (rolled_back.clone(), ReplyKind::StockReleased),
            (rolled_back.clone(), ReplyKind::StockReleased),
        ]
    );
    assert_eq!(got[2].reason.as_deref(), Some("OUT_OF_STOCK"));
    assert_eq!(got[3].reason.as_deref(), Some("UNKNOWN_ITEM"));
    assert_eq!((got[5].released, got[6].released), (Some(4), Some(4)));

    // The books: one reservation kept, one given back, nothing for the rejected.
    assert_eq!(lab.history_of(&paid).await, vec![-3]);
    assert_eq!(lab.history_of(&rolled_back).await, vec![-4, 4]);
    assert!(lab.history_of(&too_many).await.is_empty());
    let after = stock_by_item(&lab.stock).await[&2];
    assert_eq!(before - after, 3);

    // A command for another participant is poison: dead-lettered, the loop goes on.
    send(&lab, &[command(CommandKind::TakePayment, &paid, 2, 3)]).await;
    let (copied, error) =
        common::first_dead_letter(&lab.kafka, &lab.kafka.topics.inventory_commands).await;
    assert_eq!(copied["command"], "TAKE_PAYMENT");
    assert!(error.contains("not TAKE_PAYMENT"), "{error}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_answers_each_transaction_once_whoever_asks_again() {
    let lab = Lab::start(Services::all(Gateway::DeclineUser("bob".into()))).await;
    let (alice, bob) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let take = |user: &str, tx: &str| {
        let mut command = command_of(user, CommandKind::TakePayment, tx, 2, 5);
        command.total_price = Some(150_000);
        command
    };
    send_to(
        &lab,
        &lab.kafka.topics.payment_commands,
        &[
            take("alice", &alice),
            take("bob", &bob),
            // Asked again for alice's transaction, now in bob's name (whom the gateway
            // declines): the first answer stands.
            take("bob", &alice),
        ],
    )
    .await;
    let got = replies(&lab, 3).await;
    let answers: Vec<(String, ReplyKind, Option<String>)> = got
        .into_iter()
        .map(|r| (r.transaction_id, r.reply, r.reason))
        .collect();
    assert_eq!(
        answers,
        vec![
            (alice.clone(), ReplyKind::PaymentApproved, None),
            (
                bob.clone(),
                ReplyKind::PaymentDeclined,
                Some("PAYMENT_DECLINED".into())
            ),
            (alice.clone(), ReplyKind::PaymentApproved, None),
        ]
    );
    // One decision per transaction is kept, shared with the event loop.
    let decisions = common::read_topic(&lab.kafka, &lab.kafka.topics.payment_decisions, 2).await;
    let decided: Vec<(&str, bool)> = decisions
        .iter()
        .map(|(d, _)| {
            (
                d["transaction_id"].as_str().unwrap_or(""),
                d["accepted"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(decided, vec![(alice.as_str(), true), (bob.as_str(), false)]);
    lab.stop().await;
}
