//! The Java client from the same Kafka jars as the broker (`conformance/java/Probe.java`),
//! so that `edm broker` is proven with a client that is neither edm nor librdkafka: each
//! scenario prints one JSON document of what the client saw.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::compare::Broker;

/// The probe's scenarios (see its source for what each does).
pub const SCENARIOS: &[&str] = &[
    "produce-consume",
    "list-offsets",
    "errors",
    "describe-configs",
    "transactions",
    "groups",
    "idempotence",
];

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/java")
}

fn libs() -> String {
    format!("{}/*", crate::common::server_env("EDM_TEST_KAFKA_LIBS"))
}

/// Compiles the probe into a directory of its own; returns that directory.
pub fn compile() -> PathBuf {
    let classes = std::env::temp_dir().join(format!("edm-probe-{}", uuid::Uuid::new_v4().simple()));
    let status = Command::new("javac")
        .args(["-nowarn", "-cp", &libs(), "-d"])
        .arg(&classes)
        .arg(source_dir().join("Probe.java"))
        .status()
        .expect("javac (Java 17, as scripts/test-servers.sh expects)");
    assert!(status.success(), "Probe.java does not compile");
    classes
}

/// Runs `scenario` against `broker`; what the Java client saw.
pub async fn run(classes: &Path, broker: &Broker, scenario: &str) -> Value {
    let classpath = format!("{}:{}", libs(), classes.display());
    let output = tokio::process::Command::new("java")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            source_dir().join("log4j2.properties").display()
        ))
        .args([
            "-Xmx256m",
            "-cp",
            &classpath,
            "Probe",
            &broker.address,
            scenario,
        ])
        .arg(&broker.prefix)
        .output()
        .await
        .expect("java");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the Java probe's {scenario} on {} printed no JSON ({e}, {}):\n{stdout}\n{}",
            broker.name,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
