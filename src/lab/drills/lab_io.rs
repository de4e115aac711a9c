//! What the drills do to a lab and read from it: orders placed through its order service,
//! the stores' answers, and the saga's messages on the topics.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;

use super::WAIT;
use crate::event::Status;
use crate::lab::Lab;
use crate::tools::order_client::NewOrder;
use crate::tools::trace;

/// Places one unit of item 1 for `user`; its transaction id.
pub(super) async fn place(lab: &Lab, user: &str) -> anyhow::Result<String> {
    let order = NewOrder {
        user_id: user.to_string(),
        name: format!("{user} (drill)"),
        addr: "29, Hansil-ro, Jung-gu, Seoul".into(),
        tel: "01012341234".into(),
        email: format!("{user}@example.com"),
        item: 1,
        quantity: 1,
    };
    Ok(lab.client.place(&order).await?.transaction_id)
}

/// The order's status and reason as the order store holds them now (empty if none).
pub(super) async fn stored_status(
    lab: &Lab,
    tx: &str,
    user: &str,
) -> anyhow::Result<(String, String)> {
    let order = lab.orders.get(tx, user).await?.unwrap_or_default();
    let text = |key: &str| {
        order
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok((text("status"), text("reason")))
}

/// The order's final status and reason, read from the order store until it is final.
pub(super) async fn final_status(
    lab: &Lab,
    tx: &str,
    user: &str,
) -> anyhow::Result<(String, String)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, reason) = stored_status(lab, tx, user).await?;
        if Status::is_final(&status) {
            return Ok((status, reason));
        }
        lab.check_services()?;
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "order {tx} not final after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The saga's stock changes, oldest first.
pub(super) async fn history(lab: &Lab, tx: &str) -> anyhow::Result<Vec<i32>> {
    Ok(lab
        .stock
        .history_of(tx)
        .await?
        .into_iter()
        .map(|row| row.quantity)
        .collect())
}

/// Whether a message of saga `key` matching `wanted` shows on the topics within [`WAIT`].
pub(super) async fn wait_for(
    lab: &Lab,
    key: &str,
    wanted: impl Fn(&trace::TracedEvent) -> bool,
) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if trace::trace(&lab.kafka, key).await?.iter().any(&wanted) {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(false)
}

/// Whether saga `tx` shows `count` messages named `name` within [`WAIT`].
pub(super) async fn wait_count(
    lab: &Lab,
    tx: &str,
    name: &str,
    count: usize,
) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let events = trace::trace(&lab.kafka, tx).await?;
        if events.iter().filter(|e| e.status == name).count() >= count {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(false)
}

/// The key and bytes of saga `tx`'s first message on `topic`, as they were sent.
pub(super) async fn first_message(
    lab: &Lab,
    topic: &str,
    tx: &str,
) -> anyhow::Result<(Option<String>, Vec<u8>)> {
    let group = format!("edm-drill-{}", uuid::Uuid::new_v4().simple());
    let reader = lab.kafka.one_pass_reader(&group)?;
    let mut assignment = TopicPartitionList::new();
    crate::kafka::add_whole_topic(&reader, topic, &mut assignment)?;
    reader.assign(&assignment)?;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let Ok(message) = reader.recv().await else {
                continue;
            };
            let payload = message.payload().unwrap_or_default();
            let named = serde_json::from_slice::<serde_json::Value>(payload)
                .is_ok_and(|body| body["transaction_id"] == tx);
            if named {
                let key = message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned());
                return (key, payload.to_vec());
            }
        }
    })
    .await;
    let _ = tokio::task::spawn_blocking(move || drop(reader)).await;
    found.map_err(|_| anyhow::anyhow!("saga {tx}'s first message not found on {topic}"))
}
