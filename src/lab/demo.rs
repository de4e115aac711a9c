//! The lab's demonstration: one successful saga and one rolled back, shown step by step.

use serde_json::Value;

use super::{Lab, LabArgs, invariants, now_ms};
use crate::services::payment_consumer::Gateway;
use crate::tools::order_client::NewOrder;
use crate::tools::trace;

/// The customer whose payments the lab's gateway declines.
const DECLINED_USER: &str = "bob";
/// The item both demo orders buy, and how many.
const ITEM: i64 = 2;
const QUANTITY: i64 = 5;

/// Runs the demonstration; true if every invariant holds.
pub async fn run_demo(args: &LabArgs) -> anyhow::Result<bool> {
    let mut lab = Lab::start(args, Gateway::DeclineUser(DECLINED_USER.into())).await?;
    let shown = demo(&mut lab).await;
    let stopped = lab.stop().await;
    let ok = shown?;
    stopped?;
    Ok(ok)
}

fn order(user: &str) -> NewOrder {
    NewOrder {
        user_id: user.to_string(),
        name: format!("{user} (edm lab)"),
        addr: "29, Hansil-ro, Jung-gu, Seoul".into(),
        tel: "01012341234".into(),
        email: format!("{user}@example.com"),
        item: ITEM,
        quantity: QUANTITY,
    }
}

async fn demo(lab: &mut Lab) -> anyhow::Result<bool> {
    println!(
        "edm lab {}: the course's SAGA, all five services in this process",
        lab.id
    );
    println!("  {}", lab.servers.kafka);
    println!("  stock in {}", lab.servers.stock);
    println!("  orders in {}", lab.servers.orders);
    println!("  topics {}", lab.kafka.topics.all().join(", "));
    println!("  the payment gateway declines every payment of user `{DECLINED_USER}`\n");
    let before = lab.stock_by_item().await?;

    let sagas = [
        ("alice", "payment accepted: the saga completes"),
        (
            DECLINED_USER,
            "payment declined: compensation in reverse order",
        ),
    ];
    let mut placed = Vec::new();
    for (user, _) in &sagas {
        let at = now_ms();
        let tx = lab.client.place(&order(user)).await?.transaction_id;
        placed.push((tx, at));
    }

    let transactions: Vec<String> = placed.iter().map(|(tx, _)| tx.clone()).collect();
    let finished = lab.wait_final(&transactions).await?;

    for (n, ((user, story), (tx, at))) in sagas.iter().zip(&placed).enumerate() {
        println!("{}) {user} orders {QUANTITY} × item {ITEM}: {story}", n + 1);
        println!("   transaction_id {tx}");
        let events = trace::trace(&lab.kafka, tx).await?;
        print!("{}", trace::render_timeline(&events, Some(*at)));
        if let Some((done, when)) = finished.get(tx) {
            let reason = done
                .reason
                .as_deref()
                .map(|r| format!("  reason={r}"))
                .unwrap_or_default();
            println!(
                "  {:>+7} ms  {:<20} {:<width$} by order-consumer{reason}\n",
                when - at,
                done.status.as_str(),
                "(stored)",
                width = trace::topic_width(&events),
            );
        }
    }

    println!("Orders");
    for ((user, _), (tx, _)) in sagas.iter().zip(&placed) {
        let stored = lab.orders.get(tx, user).await?.unwrap_or_default();
        let text = |key: &str| {
            stored
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        println!(
            "  {user:<6} {tx}  {:<15} {}",
            text("status"),
            text("reason")
        );
    }
    let after = lab.stock_by_item().await?;
    let item = ITEM as i32;
    println!(
        "\nInventory item {ITEM}: {} before, {} after",
        before.get(&item).copied().unwrap_or_default(),
        after.get(&item).copied().unwrap_or_default()
    );
    println!("History of item {ITEM}");
    for row in lab
        .stock
        .history()
        .await?
        .iter()
        .filter(|r| r.inventory_id == item)
    {
        println!(
            "  #{:<3} {}  {:+}",
            row.id, row.transaction_id, row.quantity
        );
    }

    let books = invariants::check(&lab.stock, &lab.orders, &before).await?;
    print!("\n{}", books.render());
    Ok(books.hold())
}
