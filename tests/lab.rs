//! `edm lab` as a student runs it, against the test servers: the demonstration and the
//! load mode.

mod common;

use common::LabConfig;
use common::process::edm_command;

fn lab(args: &[&str]) -> (i32, String, String) {
    let config = LabConfig::fresh();
    let output = edm_command(&config)
        .arg("lab")
        .args(args)
        .output()
        .expect("run edm lab");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_lab_shows_a_completed_and_a_rolled_back_saga() {
    let (code, stdout, stderr) = lab(&[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Saga 1: the happy path, in order.
    let first = stdout.split("2) bob").next().expect("saga 1");
    let steps: Vec<&str> = first
        .lines()
        .filter(|l| l.trim_start().starts_with('+'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        steps,
        [
            "ORDER_CREATED",
            "INVENTORY_RESERVED",
            "PAYMENT_COMPLETE",
            "ORDER_COMPLETE"
        ],
        "{stdout}"
    );
    // Saga 2: the rollback, compensating in reverse order.
    let second = stdout
        .split("2) bob")
        .nth(1)
        .expect("saga 2")
        .split("Orders")
        .next()
        .unwrap();
    let steps: Vec<&str> = second
        .lines()
        .filter(|l| l.trim_start().starts_with('+'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        steps,
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
    assert!(
        stdout.contains("Inventory item 2: 100 before, 95 after"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("  ✓ ").count(), 2, "{stdout}");
    assert!(!stdout.contains('✗'));
}

#[test]
fn the_load_mode_keeps_the_books_and_prints_figures() {
    let (code, stdout, stderr) = lab(&[
        "--orders",
        "200",
        "--concurrency",
        "8",
        "--decline-rate",
        "0.3",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("placed     200 orders (0 refused)"),
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
    assert_eq!(numbers[0] + numbers[1], 200, "{finished}");
    assert!(
        numbers[1] > 20 && numbers[1] < 100,
        "decline rate 0.3: {finished}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("throughput")),
        "{stdout}"
    );
    assert!(stdout.contains("latency    p50"), "{stdout}");
    assert!(
        stdout.contains("✓ every order final (") && !stdout.contains('✗'),
        "{stdout}"
    );
}
