//! One scenario on both brokers, and what differs between their answers.

use std::future::Future;

use serde_json::Value;

/// A broker a scenario runs against.
#[derive(Debug, Clone)]
pub struct Broker {
    /// "edm broker" or "Apache Kafka".
    pub name: &'static str,
    /// Its `host:port`.
    pub address: String,
    /// A prefix of names (topics, groups, transactional ids) unique to this run.
    pub prefix: String,
}

impl Broker {
    /// `name` behind this run's prefix.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// The two brokers of the test servers, each with a fresh prefix.
pub fn both() -> [Broker; 2] {
    let fresh = || format!("c{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    [
        Broker {
            name: "edm broker",
            address: crate::common::server_env("EDM_TEST_EDM_BROKER"),
            prefix: fresh(),
        },
        Broker {
            name: "Apache Kafka",
            address: crate::common::server_env("EDM_TEST_APACHE_KAFKA"),
            prefix: fresh(),
        },
    ]
}

/// Runs `scenario` against both brokers at once and fails, naming every field that
/// differs, unless they give the same observable answer.
pub async fn same_on_both<F, Fut>(name: &str, scenario: F) -> Value
where
    F: Fn(Broker) -> Fut,
    Fut: Future<Output = Value>,
{
    let [edm, apache] = both();
    let (edm_answer, apache_answer) = tokio::join!(scenario(edm), scenario(apache));
    assert_same(name, &edm_answer, &apache_answer);
    apache_answer
}

/// Fails, naming every field that differs, unless `edm` (edm broker's answer) equals
/// `apache` (Apache Kafka's).
pub fn assert_same(name: &str, edm: &Value, apache: &Value) {
    let mut differences = Vec::new();
    diff("", edm, apache, &mut differences);
    if differences.is_empty() {
        eprintln!("conformance: {name}: edm broker = Apache Kafka");
        return;
    }
    panic!(
        "conformance: {name}: edm broker differs from Apache Kafka in {} field(s):\n{}\n\nApache Kafka's whole answer:\n{}",
        differences.len(),
        differences.join("\n"),
        serde_json::to_string_pretty(apache).unwrap_or_default()
    );
}

fn diff(path: &str, edm: &Value, apache: &Value, out: &mut Vec<String>) {
    match (edm, apache) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let here = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(&here, x, y, out),
                    (x, y) => out.push(format!("  {here}: edm broker {x:?}, Apache Kafka {y:?}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (n, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}/{n}"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!("  {path}: edm broker {a}, Apache Kafka {b}")),
        _ => {}
    }
}
