//! `edm order place/get`, `edm trace` and `edm doctor` against a running lab.

mod common;

use common::process::edm_command;
use common::servers::free_port;
use common::{Lab, Services};
use edm::services::payment_consumer::Gateway;
use edm::tools::trace;
use serde_json::Value;

fn run(mut command: std::process::Command) -> (i32, String, String) {
    let output = command.output().expect("run edm");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_place_get_and_trace_follow_one_saga() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;

    let mut place = edm_command(&lab.config);
    place.args([
        "order",
        "place",
        "--user",
        "kim",
        "--item",
        "3",
        "--quantity",
        "2",
    ]);
    place.args(["--url", &lab.order_url, "--wait", "--json"]);
    let (code, stdout, stderr) = run(place);
    assert_eq!(code, 0, "{stderr}");
    let order: Value = serde_json::from_str(stdout.trim()).expect("JSON order");
    assert_eq!(order["status"], "ORDER_COMPLETE");
    assert_eq!(order["user_id"], "kim");
    let tx = order["transaction_id"].as_str().unwrap().to_string();
    assert_eq!(lab.history_of(&tx).await, vec![-2]);

    let mut get = edm_command(&lab.config);
    get.args([
        "order",
        "get",
        &tx,
        "--user",
        "kim",
        "--url",
        &lab.order_url,
    ]);
    let (code, stdout, stderr) = run(get);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.trim() == "status  ORDER_COMPLETE"),
        "{stdout}"
    );
    assert!(stdout.contains(&tx));

    let mut unknown = edm_command(&lab.config);
    unknown.args([
        "order",
        "get",
        "no-such-tx",
        "--user",
        "kim",
        "--url",
        &lab.order_url,
    ]);
    let (code, _, stderr) = run(unknown);
    assert_eq!(code, 1);
    assert!(stderr.contains("404"), "{stderr}");

    // The library's trace: the saga's three events, in saga order, by the right services.
    let events = trace::trace(&lab.kafka, &tx).await.expect("trace");
    let steps: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.status.as_str(), e.sent_by))
        .collect();
    assert_eq!(
        steps,
        [
            ("ORDER_CREATED", "order-service"),
            ("INVENTORY_RESERVED", "inventory-consumer"),
            ("PAYMENT_COMPLETE", "payment-consumer"),
        ]
    );
    assert_eq!(events[1].total_price, Some(50_000));

    // The command prints the same timeline.
    let mut command = edm_command(&lab.config);
    command.args(["trace", &tx]);
    let (code, stdout, stderr) = run(command);
    assert_eq!(code, 0, "{stderr}");
    let statuses: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        statuses,
        ["ORDER_CREATED", "INVENTORY_RESERVED", "PAYMENT_COMPLETE"],
        "{stdout}"
    );

    let mut missing = edm_command(&lab.config);
    missing.args(["trace", "00000000-0000-0000-0000-000000000000"]);
    let (code, _, stderr) = run(missing);
    assert_eq!(code, 1);
    assert!(stderr.contains("no messages of saga"), "{stderr}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_what_answers_and_what_does_not() {
    let lab = Lab::start(Services::http_only()).await;
    let doctor = |mysql_url: &str| {
        let mut command = edm_command(&lab.config);
        command.args([
            "doctor",
            "--order-url",
            &lab.order_url,
            "--inventory-url",
            &lab.inventory_url,
        ]);
        command.args(["--mysql-url", mysql_url]);
        run(command)
    };

    let (code, stdout, stderr) = doctor(&lab.config.mysql.inventory_store);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with('✓')).count(),
        5,
        "{stdout}"
    );

    let down = format!(
        "mysql://root:inventorypw@127.0.0.1:{}/inventory",
        free_port()
    );
    let (code, stdout, stderr) = doctor(&down);
    assert_eq!(code, 1);
    assert!(stderr.contains("1 of 5 checks failed"), "{stderr}");
    let mysql_line = stdout
        .lines()
        .find(|l| l.contains("MySQL"))
        .expect("MySQL line");
    assert!(
        mysql_line.starts_with('✗') && mysql_line.contains("Connection refused"),
        "{mysql_line}"
    );
    assert!(stdout.contains("docker compose -f compose/docker-compose.yml up -d"));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with('✓')).count(),
        4,
        "{stdout}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_grows_partitions_and_never_shrinks_them() {
    let config = common::LabConfig::fresh();
    let create = |extra: &[&str]| {
        let mut command = edm_command(&config);
        command.arg("create-topics").args(extra);
        run(command)
    };
    let (code, stdout, stderr) = create(&[]);
    assert_eq!(code, 0, "{stderr}");
    let prefix = &config.kafka.topic_prefix;
    for topic in [
        "inventory",
        "payment",
        "order",
        "inventory.dlq",
        "payment.dlq",
        "order.dlq",
    ] {
        assert!(
            stdout.contains(&format!("created  {prefix}{topic} (1 partitions)")),
            "{topic}: {stdout}"
        );
    }

    let (code, stdout, stderr) = create(&["--partitions", "3"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("grown  {prefix}inventory from 1 to 3 partitions")),
        "{stdout}"
    );
    let (code, stdout, _) = create(&[]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!("exists  {prefix}order (3 partitions)")),
        "{stdout}"
    );

    let (code, _, stderr) = create(&["--partitions", "2"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("has 3 partitions") && stderr.contains("cannot take partitions away"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decisions_topic_that_is_not_compacted_is_flagged_and_altered() {
    let lab = Lab::start(Services::http_only()).await;
    let decisions = lab.kafka.topics.payment_decisions.clone();
    // As an older edm (or a hand-made topic) left it: the broker's default policy.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &lab.config.kafka.bootstrap_servers)
            .create()
            .expect("admin");
    let options = rdkafka::admin::AdminOptions::new();
    admin
        .delete_topics(&[&decisions], &options)
        .await
        .expect("DeleteTopics");
    let plain =
        rdkafka::admin::NewTopic::new(&decisions, 1, rdkafka::admin::TopicReplication::Fixed(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // A deleted topic's name is free again once the broker is done deleting it.
    loop {
        let created = admin
            .create_topics([&plain], &options)
            .await
            .expect("CreateTopics");
        if created[0].is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{created:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Apache Kafka answers CreateTopics before its metadata lists the topic: doctor, which
    // checks the topics the metadata lists, is asked once the new one is there (it missed
    // it once in CI, and passed the plain topic).
    loop {
        let listed = lab.kafka.check_reachable().await.expect("metadata");
        if listed.iter().any(|t| t.name == decisions) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{decisions} never listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let doctor = || {
        let mut command = edm_command(&lab.config);
        command.args([
            "doctor",
            "--order-url",
            &lab.order_url,
            "--inventory-url",
            &lab.inventory_url,
        ]);
        run(command)
    };
    let (code, stdout, _) = doctor();
    assert_eq!(code, 1, "{stdout}");
    let kafka_line = stdout
        .lines()
        .find(|l| l.contains("Kafka"))
        .expect("Kafka line");
    assert!(
        kafka_line.starts_with('✗')
            && kafka_line.contains("cleanup.policy=delete")
            && kafka_line.contains("edm create-topics"),
        "{kafka_line}"
    );

    let mut create = edm_command(&lab.config);
    create.arg("create-topics");
    let (code, stdout, stderr) = run(create);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "altered  {decisions} (1 partitions): cleanup.policy=compact (was cleanup.policy=delete)"
        )),
        "{stdout}"
    );
    let (code, stdout, _) = doctor();
    assert_eq!(code, 0, "{stdout}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_consumer_is_named_by_doctor_and_by_order_place_wait() {
    let config = common::LabConfig::fresh();
    let lab = Lab::start_with(
        config.clone(),
        Services {
            payment: None,
            ..Services::all(Gateway::Accept)
        },
    )
    .await;
    // The payment consumer runs, handles a saga (its group commits), and is stopped.
    let mut payment =
        common::process::EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]);
    let tx = lab.place("lee", 2, 1).await;
    assert_eq!(
        lab.wait_terminal(&tx, "lee").await["status"],
        "ORDER_COMPLETE"
    );
    assert!(payment.terminate().success());

    // The next order waits at the payment step; `order place --wait` says so.
    let mut place = edm_command(&config);
    place.args([
        "order",
        "place",
        "--user",
        "lee",
        "--item",
        "2",
        "--quantity",
        "1",
    ]);
    place.args(["--url", &lab.order_url, "--wait", "--timeout", "3"]);
    let (code, _, stderr) = run(place);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("ORDER_CREATED  transaction_id="),
        "{stderr}"
    );
    assert!(
        stderr.contains("it waits on:") && stderr.contains("start `edm payment-consumer`"),
        "{stderr}"
    );

    // And doctor: the payment step's group is the one check that fails.
    let mut doctor = edm_command(&config);
    doctor.args(["doctor", "--order-url", &lab.order_url]);
    doctor.args(["--inventory-url", &lab.inventory_url]);
    let (code, stdout, stderr) = run(doctor);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with('✗')).collect();
    assert_eq!(failed.len(), 1, "{stdout}");
    assert!(
        failed[0].contains("payment_consumer_group")
            && failed[0].contains("start `edm payment-consumer`"),
        "{stdout}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_will_not_grow_topics_that_running_services_read() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let tx = lab.place("park", 2, 1).await;
    assert_eq!(
        lab.wait_terminal(&tx, "park").await["status"],
        "ORDER_COMPLETE"
    );
    let create = |extra: &[&str]| {
        let mut command = edm_command(&lab.config);
        command
            .args(["create-topics", "--partitions", "3"])
            .args(extra);
        run(command)
    };
    let (code, stdout, stderr) = create(&[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    for service in [
        "edm inventory-consumer",
        "edm payment-consumer",
        "edm order-consumer",
    ] {
        assert!(stderr.contains(service), "{service}: {stderr}");
    }
    assert!(stderr.contains("--while-services-run"), "{stderr}");
    let prefix = &lab.config.kafka.topic_prefix;
    let (code, stdout, stderr) = create(&["--while-services-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("grown  {prefix}inventory from 1 to 3 partitions")),
        "{stdout}"
    );
    lab.stop().await;
}
