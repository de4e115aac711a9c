//! `edm lab` as a student runs it: the demonstration and the load mode, against the test
//! servers and with nothing configured (embedded broker and stores).

mod common;

use common::LabConfig;
use common::process::edm_command;

/// `edm lab` against the test servers.
fn lab(args: &[&str]) -> (i32, String, String) {
    let config = LabConfig::fresh();
    run(edm_command(&config).arg("lab").args(args))
}

/// `edm lab` with nothing configured: embedded broker and stores.
fn embedded_lab(args: &[&str]) -> (i32, String, String) {
    run(&mut embedded_lab_command(args))
}

fn embedded_lab_command(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_edm"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("EDM_")) {
        command.env_remove(name);
    }
    command.arg("lab").args(args);
    command
}

fn run(command: &mut std::process::Command) -> (i32, String, String) {
    let output = command.output().expect("run edm lab");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The status column of a saga's timeline lines.
fn steps(timeline: &str) -> Vec<&str> {
    timeline
        .lines()
        .filter(|l| l.trim_start().starts_with('+'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect()
}

fn check_demo(code: i32, stdout: &str, stderr: &str) {
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Reading the timelines back reaches each partition's end: not an error to show.
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let (first, rest) = stdout.split_once("2) bob").expect("two sagas");
    assert_eq!(
        steps(first),
        [
            "ORDER_CREATED",
            "INVENTORY_RESERVED",
            "PAYMENT_COMPLETE",
            "ORDER_COMPLETE"
        ],
        "{stdout}"
    );
    let second = rest.split("Orders").next().unwrap();
    assert_eq!(
        steps(second),
        [
            "ORDER_CREATED",
            "INVENTORY_RESERVED",
            "ORDER_CANCEL",
            "ORDER_CANCEL",
            "ORDER_CANCEL"
        ],
        "{stdout}"
    );
    assert!(second.contains("by payment-consumer") && second.contains("reason=PAYMENT_DECLINED"));
    // The payment's ORDER_CANCEL causes the inventory's: shown in that order.
    let cancels: Vec<&str> = second
        .lines()
        .filter(|l| l.contains(" ORDER_CANCEL ") && !l.contains("(stored)"))
        .collect();
    assert!(
        cancels.len() == 2
            && cancels[0].contains("by payment-consumer")
            && cancels[1].contains("by inventory-consumer"),
        "{second}"
    );
    assert!(
        stdout.contains("Inventory item 2: 100 before, 95 after"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("  ✓ ").count(), 2, "{stdout}");
    assert!(!stdout.contains('✗'));
}

#[test]
fn the_lab_shows_a_completed_and_a_rolled_back_saga_on_the_real_servers() {
    let (code, stdout, stderr) = lab(&[]);
    assert!(stdout.contains("  Kafka 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("stock in MySQL"), "{stdout}");
    assert!(stdout.contains("orders in DynamoDB"), "{stdout}");
    check_demo(code, &stdout, &stderr);
}

#[test]
fn the_lab_runs_with_nothing_configured() {
    let (code, stdout, stderr) = embedded_lab(&[]);
    assert!(
        stdout.contains("embedded Kafka-protocol broker (edm's own, in memory)"),
        "{stdout}"
    );
    assert!(stdout.contains("stock in embedded SQLite"), "{stdout}");
    assert!(stdout.contains("orders in embedded SQLite"), "{stdout}");
    check_demo(code, &stdout, &stderr);
}

#[test]
fn the_lab_runs_both_saga_styles_side_by_side() {
    // With librdkafka's warnings shown: the services stop without a request timing out.
    let (code, stdout, stderr) =
        run(embedded_lab_command(&["--saga", "both"]).env("RUST_LOG", "warn"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Seen before the consumers closed off the runtime's threads: the embedded broker,
    // on the same threads, could not answer their LeaveGroup for 5 s.
    assert!(!stderr.contains("Timed out"), "{stderr}");
    let (choreographed, orchestrated) = stdout
        .split_once("the course's SAGA by orchestration")
        .expect("an orchestrated run after the choreographed one");
    check_demo(code, choreographed, &stderr);
    let (alice, rest) = orchestrated.split_once("2) bob").expect("two sagas");
    let commands_and_replies = |timeline: &str| -> Vec<String> {
        steps(timeline)
            .into_iter()
            .filter(|s| *s != "saga")
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        commands_and_replies(alice),
        [
            "RESERVE_STOCK",
            "STOCK_RESERVED",
            "TAKE_PAYMENT",
            "PAYMENT_APPROVED",
            "ORDER_COMPLETE"
        ],
        "{stdout}"
    );
    let (bob, comparison) = rest.split_once("Side by side").expect("the comparison");
    assert_eq!(
        commands_and_replies(bob.split("Orders").next().unwrap_or_default()),
        [
            "RESERVE_STOCK",
            "STOCK_RESERVED",
            "TAKE_PAYMENT",
            "PAYMENT_DECLINED",
            "RELEASE_STOCK",
            "STOCK_RELEASED",
            "ORDER_CANCEL"
        ],
        "{stdout}"
    );
    assert!(bob.contains("saga RELEASING_STOCK"), "{stdout}");
    assert!(
        bob.contains("Inventory item 2: 100 before, 95 after"),
        "{stdout}"
    );
    assert_eq!(bob.matches("  ✓ ").count(), 2, "{stdout}");
    let row = |label: &str| {
        comparison
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    // Choreography: 3 events for a completed saga, 4 for a rolled-back one; orchestration:
    // 2 commands and 2 replies, and 3 + 3.
    let messages: Vec<&str> = comparison
        .lines()
        .filter(|l| l.trim_start().starts_with("messages"))
        .collect();
    assert_eq!(messages.len(), 2, "{comparison}");
    assert!(
        messages[0]
            .split_whitespace()
            .eq("messages on the topics 3 4".split(' '))
    );
    assert!(
        messages[1]
            .split_whitespace()
            .eq("messages on the topics 4 6".split(' '))
    );
    assert_eq!(
        row("invariants"),
        "invariants ✓ hold ✓ hold",
        "{comparison}"
    );
    assert!(!stdout.contains('✗'));
}

fn check_load(code: i32, stdout: &str, stderr: &str, orders: usize) {
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("placed     {orders} orders (0 refused)")),
        "{stdout}"
    );
    let finished = stdout
        .lines()
        .find(|l| l.starts_with("finished"))
        .expect("finished line");
    let numbers: Vec<usize> = finished
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers[0] + numbers[1], orders, "{finished}");
    let declined = numbers[1] as f64 / orders as f64;
    assert!(
        (0.15..0.45).contains(&declined),
        "decline rate 0.3: {finished}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("throughput")),
        "{stdout}"
    );
    assert!(stdout.contains("latency    p50"), "{stdout}");
    let cpu = stdout
        .lines()
        .find(|l| l.starts_with("cpu        "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok());
    assert!(cpu.is_some_and(|s| s > 0.0), "the run's CPU time: {stdout}");
    assert!(
        stdout.contains("✓ every order final (") && !stdout.contains('✗'),
        "{stdout}"
    );
}

#[test]
fn the_load_mode_keeps_the_books_on_the_real_servers() {
    let args = [
        "--orders",
        "200",
        "--concurrency",
        "8",
        "--decline-rate",
        "0.3",
    ];
    let (code, stdout, stderr) = lab(&args);
    check_load(code, &stdout, &stderr, 200);
}

#[test]
fn the_embedded_load_mode_keeps_the_books() {
    let args = [
        "--orders",
        "400",
        "--concurrency",
        "8",
        "--decline-rate",
        "0.3",
    ];
    let (code, stdout, stderr) = embedded_lab(&args);
    check_load(code, &stdout, &stderr, 400);
}

#[test]
fn a_load_run_watches_one_style_at_a_time() {
    let (code, stdout, stderr) = embedded_lab(&[
        "--saga",
        "both",
        "--orders",
        "10",
        "--ui",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("--ui with --orders follows one style's load: choose --saga"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_the_load_cleanly_and_removes_the_runs_stores() {
    use std::io::{BufRead, BufReader};
    let scratch =
        std::env::temp_dir().join(format!("edm-ctrl-c-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let mut child = embedded_lab_command(&["--orders", "1000000", "--rate", "200"])
        .env("TMPDIR", &scratch)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("edm lab");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut header = String::new();
    stdout
        .read_line(&mut header)
        .expect("the load's first line");
    assert!(header.starts_with("edm lab load"), "{header}");
    // The lab starts, warms up and places orders for a while.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "edm lab still running 60 s after Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut report = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut report).expect("report");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(1), "{report}\n{stderr}");
    assert!(report.contains("then interrupted (Ctrl-C)"), "{report}");
    // The orders placed before Ctrl-C finished, and the books hold over them.
    assert_eq!(report.matches("  ✓ ").count(), 2, "{report}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .expect("scratch dir")
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the run's stores are still there: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn every_drill_runs_from_the_terminal_in_both_styles_and_keeps_the_books() {
    const DRILLS: [&str; 6] = [
        "decline-payment",
        "poison-message",
        "duplicate-event",
        "stop-payment",
        "crash-inventory",
        "crash-orchestrator",
    ];
    let mut args = vec!["--saga", "both", "--step-timeout", "2"];
    for drill in DRILLS {
        args.extend(["--drill", drill]);
    }
    let (code, stdout, stderr) = embedded_lab(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Drill crash-orchestrator (choreography): not for this style; skipped"),
        "{stdout}"
    );
    for style in ["choreography", "orchestration"] {
        for drill in DRILLS {
            if (drill, style) == ("crash-orchestrator", "choreography") {
                continue;
            }
            assert!(
                stdout.contains(&format!("Drill {drill} ({style})")),
                "{drill} ({style}) not run:\n{stdout}"
            );
        }
    }
    assert!(!stdout.contains('✗'), "{stdout}");
    assert!(
        stdout.contains("✓ the stock was taken once, not twice"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ the poison message was dead-lettered"),
        "{stdout}"
    );
}
