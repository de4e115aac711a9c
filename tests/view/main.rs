//! The web view (`edm lab --ui`, `edm ui`) in a real browser: headless Chromium driven
//! over WebDriver (chromedriver), on the test servers (issue 21). Screenshots go to the
//! test target's temporary directory (`view-*.png`), not into the repository.
//!
//! Here: the browser and the helpers the tests share; `lab_view`: the lab's view, its
//! drills and tabs; `stack`: `edm ui` on a running stack, 20,000 sagas, the consumer
//! groups, a load run followed live.

#[path = "../common/mod.rs"]
mod common;
mod lab_view;
mod stack;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::LabConfig;
use common::process::EdmProcess;
use common::servers::{free_port, wait_port};
use common::{Lab, Services};
use edm::services::payment_consumer::Gateway;
use edm::tools::order_client::{NewOrder, OrderClient};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A user id a careless page would run as a script.
const HOSTILE_USER: &str = "<script>window.__pwned=1</script>";

/// chromedriver on a port of its own, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(common::server_env("EDM_TEST_CHROMEDRIVER"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        wait_port(port, true, Duration::from_secs(30));
        Self { child, port }
    }

    /// A headless Chromium session (flags from INFRA.md: headless as root, no network
    /// of its own, a fresh profile).
    async fn browser(&self) -> Client {
        let profile = std::env::temp_dir().join(format!(
            "edm-view-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let options = json!({
            "binary": common::server_env("EDM_TEST_CHROMIUM"),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn order(user: &str) -> NewOrder {
    NewOrder {
        user_id: user.to_string(),
        name: "view test".into(),
        addr: "29, Hansil-ro".into(),
        tel: "01012341234".into(),
        email: "view@example.com".into(),
        item: 1,
        quantity: 1,
    }
}

/// The order API of the lab's `style` saga, from the lab's report.
fn order_url(lab: &EdmProcess, style: &str) -> String {
    let output = lab.output();
    let line = output
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with(&format!("{style} orders: POST "))
        })
        .unwrap_or_else(|| panic!("no {style} order API in:\n{output}"));
    let url = line
        .split("POST ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next());
    url.expect("a URL")
        .trim_end_matches("/v1/order")
        .to_string()
}

/// Waits until the saga list has a row for `tx`; how long that took.
async fn row_of(browser: &Client, tx: &str) -> Duration {
    let started = Instant::now();
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!("tr[data-tx='{tx}']")))
        .await
        .unwrap_or_else(|_| panic!("saga {tx} never listed"));
    started.elapsed()
}

/// Opens saga `tx` and waits for its diagram to hold `count` messages; their names in
/// the order drawn, and the page's text of the saga.
async fn diagram(browser: &Client, tx: &str, count: usize) -> (Vec<String>, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        browser
            .find(Locator::Css(&format!("tr[data-tx='{tx}']")))
            .await
            .expect("row")
            .click()
            .await
            .expect("click");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let names: Vec<String> = match browser
            .execute(
                "return [...document.querySelectorAll('#diagram .arrow')].map(a => a.dataset.name)",
                vec![],
            )
            .await
        {
            Ok(Value::Array(names)) => names
                .into_iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let text = text_of(browser, "detail-pane").await;
        if names.len() >= count && text.contains(tx) {
            return (names, text);
        }
        assert!(
            Instant::now() < deadline,
            "saga {tx}: {names:?} after 10 s\n{text}"
        );
    }
}

/// Clicks the element with id `id`.
async fn click(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("no #{id}"))
        .click()
        .await
        .expect("click");
}

/// Runs `script` every 100 ms until it returns something other than null (10 s at most).
async fn poll_script(browser: &Client, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = browser.execute(script, vec![]).await.expect("script");
        if !value.is_null() {
            return value;
        }
        assert!(Instant::now() < deadline, "nothing from:\n{script}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(browser: &Client, name: &str) {
    if let Ok(png) = browser.screenshot().await {
        let path =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("view-{name}.png"));
        let _ = std::fs::write(&path, png);
        eprintln!("screenshot: {}", path.display());
    }
}

/// Reads the view's live stream until a `sagas` event holds `tx` (a transaction id, or
/// any text); how long that took.
async fn streamed(stream: &mut reqwest::Response, tx: &str) -> Duration {
    let started = Instant::now();
    let mut seen = String::new();
    while !seen.contains(tx) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("{tx} never streamed; got:\n{seen}"))
            .expect("stream")
            .expect("the stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: sagas"), "{seen}");
    started.elapsed()
}

/// The view's `/api/consumers` answer for the group named `group`, once `ready` holds
/// for it (20 s at most).
async fn group_when(
    http: &reqwest::Client,
    base: &str,
    group: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let groups: Value = get_json(http, format!("{base}/api/consumers")).await;
        let found = groups
            .as_array()
            .and_then(|all| all.iter().find(|g| g["group"] == group))
            .cloned();
        if let Some(found) = found.filter(|g| ready(g)) {
            return found;
        }
        assert!(Instant::now() < deadline, "group {group}: {groups}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sums a group's lag over its partitions.
fn total_lag(group: &Value) -> i64 {
    group["partitions"]
        .as_array()
        .map_or(0, |ps| ps.iter().filter_map(|p| p["lag"].as_i64()).sum())
}

/// The JSON answer of `GET url` (`null` when it is none: a poll tries again).
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    let answer = http.get(url).send().await.expect("GET");
    answer.json().await.unwrap_or(Value::Null)
}

/// The text of the element with id `id`.
async fn text_of(browser: &Client, id: &str) -> String {
    let element = browser.find(Locator::Id(id)).await.expect(id);
    element.text().await.expect("text")
}

/// The view's live stream of changes.
async fn open_stream(http: &reqwest::Client, base: &str) -> reqwest::Response {
    let stream = http.get(format!("{base}/api/stream")).send().await;
    stream.expect("the live stream")
}
