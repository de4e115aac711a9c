//! A broker restarted on its data, cleanly (SIGTERM) and killed (`kill -9`): every
//! reader must find the same records at the same offsets, transactions still committed
//! or aborted as they were, and the groups' committed offsets.

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use super::compare::{self, Broker};
use super::ops;
use super::wire::Wire;
use crate::common::servers::{PrivateApacheKafka, PrivateServer, free_port};

/// A broker of this test's own, so that it can be stopped.
enum Private {
    Edm { server: PrivateServer, dir: PathBuf },
    Apache(PrivateApacheKafka),
}

impl Private {
    fn edm() -> Self {
        let dir =
            std::env::temp_dir().join(format!("edm-restart-{}", uuid::Uuid::new_v4().simple()));
        let server = PrivateServer::broker_on(free_port(), &["--data-dir", &dir.to_string_lossy()]);
        Private::Edm { server, dir }
    }

    fn address(&self) -> String {
        let port = match self {
            Private::Edm { server, .. } => server.port,
            Private::Apache(kafka) => kafka.port,
        };
        format!("127.0.0.1:{port}")
    }

    /// Stops it (`kill -9` if `kill`, else SIGTERM) and starts it again on its data.
    fn restart(&mut self, kill: bool) {
        match self {
            Private::Edm { server, dir } => {
                match kill {
                    true => server.kill(),
                    false => server.terminate(),
                }
                *server =
                    PrivateServer::broker_on(server.port, &["--data-dir", &dir.to_string_lossy()]);
            }
            Private::Apache(kafka) => {
                match kill {
                    true => kafka.kill(),
                    false => kafka.terminate(),
                }
                kafka.start_again();
            }
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        if let Private::Edm { dir, .. } = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn producer(
    address: &str,
    transactional_id: Option<&str>,
) -> ThreadedProducer<DefaultProducerContext> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", address);
    if let Some(id) = transactional_id {
        config.set("transactional.id", id);
    }
    config.create().expect("producer")
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, value: &str) {
    producer
        .send(BaseRecord::to(topic).key("k").payload(value))
        .expect("queued");
    producer.flush(Duration::from_secs(10)).expect("delivered");
}

/// The case of the issue: a transaction of 5 records committed, one of 3 aborted, a plain
/// record; and a group's committed offset with metadata.
async fn write(broker: &Broker) {
    let mut wire = Wire::connect(&broker.address).await;
    let topic = broker.topic("kept");
    assert_eq!(ops::create_topic(&mut wire, &topic, 1, 1, &[]).await, 0);
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let writer = producer(&broker.address, Some(&broker.topic("writer")));
        writer.init_transactions(timeout).expect("init");
        writer.begin_transaction().expect("begin");
        for n in 1..=5 {
            send(&writer, &topic, &format!("committed-{n}"));
        }
        writer.commit_transaction(timeout).expect("commit");
        writer.begin_transaction().expect("begin");
        for n in 1..=3 {
            send(&writer, &topic, &format!("aborted-{n}"));
        }
        writer.abort_transaction(timeout).expect("abort");
        // Apache Kafka answers EndTxn before it writes the markers (edm broker after): the
        // plain record waits for the abort marker, so that both logs hold the same order.
        super::rdkafka_scenarios::wait_for_high_watermark(&broker.address, &topic, 10, timeout);
        send(&producer(&broker.address, None), &topic, "plain-1");

        let group: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &broker.address)
            .set("group.id", broker.topic("group"))
            .create()
            .expect("consumer");
        let mut offsets = TopicPartitionList::new();
        let mut element = offsets.add_partition(&topic, 0);
        element.set_offset(Offset::Offset(4)).expect("offset");
        element.set_metadata("where the saga was");
        group.commit(&offsets, CommitMode::Sync).expect("commit");
    })
    .await
    .expect("writer");
}

/// What readers see: both isolation levels, the offsets, the group's commit.
async fn observe(broker: &Broker) -> Value {
    let mut wire = Wire::connect(&broker.address).await;
    let topic = broker.topic("kept");
    ops::wait_for_leaders(&mut wire, &topic).await;
    let committed_offset = tokio::task::spawn_blocking({
        let (address, group, topic) =
            (broker.address.clone(), broker.topic("group"), topic.clone());
        move || {
            let group: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &address)
                .set("group.id", &group)
                .create()
                .expect("consumer");
            let mut wanted = TopicPartitionList::new();
            wanted.add_partition(&topic, 0);
            let committed = group
                .committed_offsets(wanted, Duration::from_secs(30))
                .expect("OffsetFetch");
            let element = &committed.elements_for_topic(&topic)[0];
            json!({"offset": format!("{:?}", element.offset()), "metadata": element.metadata()})
        }
    })
    .await
    .expect("OffsetFetch");
    json!({
        "read_committed": ops::read_all(&mut wire, &topic, 0, 1).await,
        "read_uncommitted": ops::read_all(&mut wire, &topic, 0, 0).await,
        "earliest": ops::list_offset(&mut wire, &topic, 0, -2, 0).await,
        "latest": ops::list_offset(&mut wire, &topic, 0, -1, 0).await,
        "latest_read_committed": ops::list_offset(&mut wire, &topic, 0, -1, 1).await,
        "group_committed": committed_offset,
    })
}

/// [`Private::restart`] off the runtime's threads (it waits for the broker's port).
async fn restarted(mut private: Private, kill: bool) -> Private {
    tokio::task::spawn_blocking(move || {
        private.restart(kill);
        private
    })
    .await
    .expect("restart")
}

/// Writes, restarts cleanly, writes one more record, is killed and restarted: what the
/// readers saw at each point.
async fn scenario(private: Private, broker: Broker) -> Value {
    write(&broker).await;
    let before = observe(&broker).await;
    let private = restarted(private, false).await;
    let after_sigterm = observe(&broker).await;
    let next = tokio::task::spawn_blocking({
        let (address, topic) = (broker.address.clone(), broker.topic("kept"));
        move || send(&producer(&address, None), &topic, "plain-2")
    });
    next.await.expect("plain-2");
    let before_kill = observe(&broker).await;
    let _private = restarted(private, true).await;
    let after_kill = observe(&broker).await;
    json!({
        "before": before,
        "after_sigterm": after_sigterm,
        "before_kill_9": before_kill,
        "after_kill_9": after_kill,
    })
}

/// Both brokers, each restarted on its data: the same answers before and after, on both.
pub async fn same_after_restarts() {
    let edm = Private::edm();
    let apache = Private::Apache(PrivateApacheKafka::start());
    let [mut edm_broker, mut apache_broker] = compare::both();
    edm_broker.address = edm.address();
    apache_broker.address = apache.address();
    let (edm_answer, apache_answer) =
        tokio::join!(scenario(edm, edm_broker), scenario(apache, apache_broker));
    compare::assert_same("a restart on the data kept", &edm_answer, &apache_answer);
    assert_eq!(apache_answer["before"], apache_answer["after_sigterm"]);
    assert_eq!(
        apache_answer["before_kill_9"],
        apache_answer["after_kill_9"]
    );
}
