//! The command line and the project's files: flags, helpful errors when a server is
//! missing, the compose file, and the walkthrough in `examples.txt`.

use std::process::{Command, Output};

use edm::config::{DEFAULT_BOOTSTRAP_SERVERS, DEFAULT_DYNAMODB_ENDPOINT, DEFAULT_MYSQL_URL};
use serde_yaml_ng::Value;

const SUBCOMMANDS: [&str; 8] = [
    "broker",
    "create-topics",
    "setup",
    "order-service",
    "order-consumer",
    "inventory-consumer",
    "inventory-service",
    "payment-consumer",
];

fn edm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edm"))
        .args(args)
        .env_remove("EDM_BOOTSTRAP_SERVERS")
        .env_remove("EDM_MYSQL_URL")
        .env_remove("EDM_DYNAMODB_ENDPOINT")
        .output()
        .expect("run edm")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A local port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn help_lists_every_step_of_the_course() {
    let output = edm(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for subcommand in SUBCOMMANDS {
        assert!(
            help.contains(subcommand),
            "--help lacks {subcommand}:\n{help}"
        );
    }
}

#[test]
fn payment_consumer_needs_a_true_or_false_gateway() {
    let output = edm(&["payment-consumer", "--pg-ok", "maybe"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("expected true or false"),
        "{}",
        stderr(&output)
    );
    let output = edm(&["payment-consumer"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--pg-ok"), "{}", stderr(&output));
}

#[test]
fn an_unreachable_mysql_is_named_with_what_to_do() {
    let url = format!("mysql://root:secret@127.0.0.1:{}/inventory", closed_port());
    let output = edm(&[
        "inventory-service",
        "--listen",
        "127.0.0.1:0",
        "--mysql-url",
        &url,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("nothing answers as MySQL at 127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("docker compose"), "{message}");
    assert!(
        message.contains("sqlite://"),
        "the way without Docker: {message}"
    );
    assert!(!message.contains("secret"), "password leaked: {message}");
    assert_eq!(message.trim().lines().count(), 1, "not one line: {message}");
}

#[test]
fn an_unreachable_kafka_is_named_with_what_to_do() {
    let servers = format!("127.0.0.1:{}", closed_port());
    let output = edm(&[
        "payment-consumer",
        "--pg-ok",
        "true",
        "--bootstrap-servers",
        &servers,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot reach Kafka at {servers}")),
        "{message}"
    );
    assert!(message.contains("docker compose"), "{message}");
}

#[test]
fn an_unreachable_dynamodb_is_named_with_what_to_do() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let output = edm(&["order-consumer", "--dynamodb-endpoint", &endpoint]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot reach DynamoDB at {endpoint}")),
        "{message}"
    );
    assert!(message.contains("docker compose"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "not one line: {message}");
}

#[test]
fn bad_kafka_properties_are_rejected_at_parse_time() {
    let output = edm(&["create-topics", "-X", "no-equals-sign"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("key=value"), "{}", stderr(&output));
    // The settings edm's guarantees rest on cannot be switched off, by flag or environment.
    let output = edm(&["inventory-consumer", "-X", "enable.auto.commit=true"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`enable.auto.commit` is set by edm"),
        "{}",
        stderr(&output)
    );
    let output = Command::new(env!("CARGO_BIN_EXE_edm"))
        .args(["payment-consumer", "--pg-ok", "true"])
        .env(
            "EDM_KAFKA_PROPERTIES",
            "linger.ms=5,enable.idempotence=false",
        )
        .output()
        .expect("run edm");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`enable.idempotence` is set by edm"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_kafka_property_may_hold_a_list() {
    // librdkafka's list values (`debug=broker,topic`) are one property, not two; what
    // follows is the unreachable broker's error (1), not a parse error (2).
    let servers = format!("127.0.0.1:{}", closed_port());
    let output = edm(&[
        "create-topics",
        "--bootstrap-servers",
        &servers,
        "-X",
        "debug=broker,topic",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/compose/docker-compose.yml"
    ))
    .expect("compose/docker-compose.yml");
    serde_yaml_ng::from_str(&text).expect("compose file is valid YAML")
}

fn published_ports(service: &Value) -> Vec<String> {
    service["ports"]
        .as_sequence()
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_stack_matches_the_defaults() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    assert!(
        !services
            .keys()
            .any(|k| k.as_str().is_some_and(|k| k.contains("zookeeper"))),
        "Kafka must run in KRaft mode"
    );
    let kafka = &compose["services"]["kafka1"];
    assert!(
        kafka["environment"]["KAFKA_PROCESS_ROLES"]
            .as_str()
            .is_some_and(|roles| roles.contains("controller"))
    );
    let kafka_port = DEFAULT_BOOTSTRAP_SERVERS.rsplit(':').next().unwrap();
    assert!(published_ports(kafka).contains(&format!("{kafka_port}:{kafka_port}")));
    assert!(
        kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
            .as_str()
            .is_some_and(|l| l.contains(DEFAULT_BOOTSTRAP_SERVERS))
    );

    let dynamo_port = DEFAULT_DYNAMODB_ENDPOINT.rsplit(':').next().unwrap();
    assert!(
        published_ports(&compose["services"]["dynamodb"])
            .contains(&format!("{dynamo_port}:{dynamo_port}"))
    );

    let mysql = &compose["services"]["mysql"];
    assert!(
        mysql["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("mysql:8"))
    );
    assert!(published_ports(mysql).contains(&"3306:3306".to_string()));
    assert!(DEFAULT_MYSQL_URL.contains(":3306/inventory"));
    let password = mysql["environment"]["MYSQL_ROOT_PASSWORD"]
        .as_str()
        .unwrap();
    assert!(DEFAULT_MYSQL_URL.contains(&format!("root:{password}@")));
    assert_eq!(
        mysql["environment"]["MYSQL_DATABASE"].as_str(),
        Some("inventory")
    );
    let volumes = mysql["volumes"].as_sequence().expect("volumes");
    assert!(volumes.iter().any(|v| {
        v.as_str()
            .is_some_and(|v| v.starts_with("../sql:/docker-entrypoint-initdb.d"))
    }));
    // The course's Node inventory service logs in as root with mysql_native_password.
    assert!(mysql["command"].as_sequence().is_some_and(|c| {
        c.iter()
            .any(|a| a.as_str() == Some("--mysql-native-password=ON"))
    }));
    let clients = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql/zz-course-clients.sql"
    ))
    .expect("sql/zz-course-clients.sql");
    assert!(clients.contains(&format!(
        "ALTER USER 'root'@'%' IDENTIFIED WITH mysql_native_password BY '{password}'"
    )));
}

#[test]
fn every_edm_command_in_the_walkthrough_exists() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples.txt"))
        .expect("examples.txt");
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("edm ")) {
        let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
        let subcommand = words[1];
        let output = edm(&[subcommand, "--help"]);
        assert!(
            output.status.success(),
            "`{line}`: no subcommand {subcommand}"
        );
        // Flags given in the walkthrough parse (checked without running: --help wins).
        let mut with_help: Vec<&str> = words[1..].to_vec();
        with_help.push("--help");
        assert!(edm(&with_help).status.success(), "`{line}` does not parse");
        seen.push(line.to_string());
    }
    for step in [
        "edm broker",
        "edm setup",
        "edm create-topics",
        "edm payment-consumer --pg-ok true",
        "edm payment-consumer --pg-ok false",
        "edm order-service",
        "edm order-consumer",
        "edm inventory-consumer",
        "edm inventory-service",
    ] {
        assert!(
            seen.iter().any(|l| l.starts_with(step)),
            "examples.txt lacks `{step}`"
        );
    }
    assert!(text.contains("/v1/order?transaction_id="));
    assert!(text.contains("docker compose -f compose/docker-compose.yml up"));
}

#[test]
fn a_dynamodb_connection_limit_of_zero_is_rejected_at_parse_time() {
    let output = edm(&["order-consumer", "--dynamodb-connections", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("--dynamodb-connections"), "{message}");
}

#[test]
fn a_broker_on_a_port_in_use_says_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = edm(&["broker", "--listen", &address]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains(&address), "{error}");
    assert!(
        error.contains("in use") && error.contains("--listen"),
        "{error}"
    );
}

#[test]
fn a_closed_pipe_ends_a_subcommand_quietly() {
    // `edm create-topics | head -3`: the reader is gone before edm writes its first line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_edm"))
        .args(["create-topics", "--topic-prefix", "closed-pipe-"])
        .env(
            "EDM_BOOTSTRAP_SERVERS",
            std::env::var("EDM_TEST_BOOTSTRAP_SERVERS")
                .unwrap_or_else(|_| "127.0.0.1:29092".into()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run edm");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("edm ends");
    let errors = stderr(&output);
    assert!(!errors.contains("panicked"), "{errors}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        output.status.success() || output.status.signal() == Some(13),
        "ended by SIGPIPE, or done: {:?}\n{errors}",
        output.status
    );
}

#[test]
fn help_names_environment_variables_without_a_value() {
    let help = String::from_utf8_lossy(&edm(&["order-consumer", "--help"]).stdout).into_owned();
    assert!(help.contains("[env: EDM_BOOTSTRAP_SERVERS]"), "{help}");
    assert!(!help.contains("EDM_BOOTSTRAP_SERVERS="), "{help}");
}
