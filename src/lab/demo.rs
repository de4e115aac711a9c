//! The lab's demonstration: one successful saga and one rolled back, shown step by step —
//! in one SAGA style, or in both with the same orders and a side-by-side comparison.

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::compare::{self, Shown};
use super::{DECLINED_USER, drills};
use super::{Lab, LabArgs, invariants, now_ms};
use crate::orchestration::SagaStyle;
use crate::services::payment_consumer::Gateway;
use crate::tools::order_client::NewOrder;
use crate::tools::trace;

/// The item both demo orders buy, and how many.
const ITEM: i64 = 2;
const QUANTITY: i64 = 5;

/// Runs the demonstration in each style `args` asks for; true if every invariant holds.
/// On `interrupt` it stops where it is, stops the services and removes the run's stores.
pub async fn run_demo(args: &LabArgs, interrupt: &CancellationToken) -> anyhow::Result<bool> {
    let mut shown = Vec::new();
    let mut drills_passed = true;
    // With --ui, each style's lab keeps running for the view.
    let mut kept: Vec<(Arc<Lab>, SagaStyle)> = Vec::new();
    for style in args.saga.styles() {
        let mut lab = Lab::start(args, Gateway::DeclineUser(DECLINED_USER.into()), style).await?;
        let result = tokio::select! {
            result = demo_and_drills(&mut lab, style, &args.drills) => Some(result),
            _ = interrupt.cancelled() => None,
        };
        let result = match result {
            Some(Ok(result)) if args.ui => {
                kept.push((Arc::new(lab), style));
                result
            }
            Some(result) => {
                let stopped = lab.stop().await;
                if result.is_err() || stopped.is_err() {
                    let _ = stop_all(std::mem::take(&mut kept)).await;
                }
                let result = result?;
                stopped?;
                result
            }
            None => {
                lab.stop().await?;
                stop_all(kept).await?;
                return Ok(true);
            }
        };
        drills_passed &= result.1;
        shown.push(result.0);
    }
    if shown.len() > 1 {
        print!("{}", compare::render(&shown, &story_names()));
    }
    if args.ui {
        let served = serve_view(&kept, pairs(&shown), args.listen, interrupt).await;
        stop_all(kept).await?;
        served?;
    }
    Ok(drills_passed && shown.iter().all(|s| s.hold))
}

/// The demo, then each drill asked for; whether every drill passed.
async fn demo_and_drills(
    lab: &mut Lab,
    style: SagaStyle,
    drills: &[drills::Drill],
) -> anyhow::Result<(Shown, bool)> {
    let shown = demo(lab, style).await?;
    let mut passed = true;
    for drill in drills {
        if !drills::Drill::for_style(style).contains(drill) {
            println!(
                "\nDrill {} ({}): not for this style; skipped",
                drill.name(),
                style.as_str()
            );
            continue;
        }
        let report = drills::run(lab, style, *drill).await?;
        print!("\n{}", report.render());
        passed &= report.passed;
    }
    Ok((shown, passed))
}

/// Serves the web view of the kept labs, with their drills and stock, until Ctrl-C.
async fn serve_view(
    labs: &[(Arc<Lab>, SagaStyle)],
    pairs: Vec<crate::view::Pair>,
    listen: std::net::SocketAddr,
    interrupt: &CancellationToken,
) -> anyhow::Result<()> {
    let listener = crate::view::bind(listen).await?;
    let address = listener.local_addr()?;
    println!("\nweb view of the sagas: http://{address}/");
    for (lab, style) in labs {
        println!(
            "  {} orders: POST {}/v1/order (user `{DECLINED_USER}` is declined)",
            style.as_str(),
            lab.order_url
        );
    }
    println!("  Ctrl-C ends the lab");
    let sources: Vec<_> = labs
        .iter()
        .map(|(lab, style)| crate::view::Source {
            name: style.as_str(),
            kafka: lab.kafka.clone(),
            orders: Some(lab.orders.clone()),
            stock: Some(lab.stock.clone()),
        })
        .collect();
    let running: Arc<dyn crate::view::Labs> =
        Arc::new(drills::RunningLabs::new(labs.to_vec(), pairs));
    crate::view::View::serve(&sources, Some(running), listener, interrupt.clone()).await
}

/// Stops the kept labs, each in turn; the first failure is the answer.
async fn stop_all(labs: Vec<(Arc<Lab>, SagaStyle)>) -> anyhow::Result<()> {
    let mut failed = Ok(());
    for (lab, _) in labs {
        let stopped = match Arc::try_unwrap(lab) {
            Ok(lab) => lab.stop().await,
            Err(_) => Err(anyhow::anyhow!(
                "a lab is still in use; its stores are left"
            )),
        };
        if failed.is_ok() {
            failed = stopped;
        }
    }
    failed
}

/// The demo's orders, each with its saga in every style shown.
fn pairs(shown: &[Shown]) -> Vec<crate::view::Pair> {
    story_names()
        .into_iter()
        .enumerate()
        .map(|(n, story)| crate::view::Pair {
            story,
            transactions: shown
                .iter()
                .filter_map(|s| Some((s.style.as_str(), s.transactions.get(n)?.clone())))
                .collect(),
        })
        .collect()
}

/// The demo sagas' one-line stories.
fn story_names() -> Vec<String> {
    SAGAS
        .iter()
        .map(|(user, story)| match story.split_once(':') {
            Some((what, _)) => format!("{user}, {what}"),
            None => user.to_string(),
        })
        .collect()
}

/// The demo's customers and what happens to their orders.
const SAGAS: [(&str, &str); 2] = [
    ("alice", "payment accepted: the saga completes"),
    (
        DECLINED_USER,
        "payment declined: compensation in reverse order",
    ),
];

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

async fn demo(lab: &mut Lab, style: SagaStyle) -> anyhow::Result<Shown> {
    println!(
        "edm lab {}: the course's SAGA by {}, all services in this process",
        lab.id,
        style.as_str()
    );
    println!("  {}", lab.servers.kafka);
    println!("  stock in {}", lab.servers.stock);
    println!("  orders in {}", lab.servers.orders);
    let topics = match style {
        SagaStyle::Choreography => lab.kafka.topics.all(),
        SagaStyle::Orchestration => lab.kafka.topics.orchestration(),
    };
    println!("  topics {}", topics.join(", "));
    println!("  the payment gateway declines every payment of user `{DECLINED_USER}`\n");
    let before = lab.stock_by_item().await?;

    let mut placed = Vec::new();
    for (user, _) in &SAGAS {
        let at = now_ms();
        let tx = lab.client.place(&order(user)).await?.transaction_id;
        placed.push((tx, at));
    }

    let transactions: Vec<String> = placed.iter().map(|(tx, _)| tx.clone()).collect();
    let finished = lab.wait_final(&transactions).await?;

    let mut sagas = Vec::new();
    for (n, ((user, story), (tx, at))) in SAGAS.iter().zip(&placed).enumerate() {
        println!("{}) {user} orders {QUANTITY} × item {ITEM}: {story}", n + 1);
        println!("   transaction_id {tx}");
        let messages = trace::trace(&lab.kafka, tx).await?;
        let states = match lab.orders.saga(tx).await? {
            Some(saga) => trace::saga_states(&saga),
            None => Vec::new(),
        };
        let count = messages.len();
        let events = trace::sorted(messages.into_iter().chain(states).collect());
        print!("{}", trace::render_timeline(&events, Some(*at)));
        let latency = finished.get(tx).map(|(_, when)| when - at);
        if let Some((done, when)) = finished.get(tx) {
            let reason = done
                .reason
                .as_deref()
                .map(|r| format!("  reason={r}"))
                .unwrap_or_default();
            let by = match style {
                SagaStyle::Choreography => "order-consumer",
                SagaStyle::Orchestration => "orchestrator",
            };
            println!(
                "  {:>+7} ms  {:<22} {:<width$} by {by}{reason}\n",
                when - at,
                done.status.as_str(),
                "(stored)",
                width = trace::topic_width(&events),
            );
        }
        sagas.push((count, latency));
    }

    println!("Orders");
    for ((user, _), (tx, _)) in SAGAS.iter().zip(&placed) {
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
    Ok(Shown {
        style,
        sagas,
        transactions: placed.into_iter().map(|(tx, _)| tx).collect(),
        hold: books.hold(),
    })
}
