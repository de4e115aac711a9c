//! The web view (`edm lab --ui`) in a real browser: headless Chromium driven over
//! WebDriver (chromedriver), on the test servers (issue 21). Screenshots go to the test
//! target's temporary directory (`view-*.png`), not into the repository.

mod common;

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
        let text = browser
            .find(Locator::Id("detail-pane"))
            .await
            .expect("detail pane")
            .text()
            .await
            .expect("text");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_shows_each_saga_live_with_its_messages_and_compensation() {
    let config = LabConfig::fresh();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut lab = EdmProcess::spawn(
        &config,
        "lab",
        &[
            "--saga",
            "both",
            "--step-timeout",
            "2",
            "--ui",
            "--listen",
            &listen,
        ],
    );
    lab.wait_for_output("Ctrl-C ends the lab", Duration::from_secs(120))
        .await;
    let choreography = OrderClient::new(&order_url(&lab, "choreography"));
    let orchestration = OrderClient::new(&order_url(&lab, "orchestration"));

    let driver = Driver::start();
    let browser = driver.browser().await;
    browser
        .goto(&format!("http://{listen}/"))
        .await
        .expect("open the view");
    // The demo's four sagas (two per style) are listed at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser
        .find_all(Locator::Css("#sagas tbody tr"))
        .await
        .map_or(0, |rows| rows.len())
        < 4
    {
        assert!(Instant::now() < deadline, "the demo's sagas are not listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An order placed through the API appears, live; its user id shows as text.
    let hostile = choreography
        .place(&order(HOSTILE_USER))
        .await
        .expect("order");
    let took = row_of(&browser, &hostile.transaction_id).await;
    eprintln!("a new saga was listed {took:?} after its order was accepted");
    assert!(took < Duration::from_secs(1), "listed after {took:?}");
    let (names, text) = diagram(&browser, &hostile.transaction_id, 3).await;
    assert_eq!(
        names,
        ["ORDER_CREATED", "INVENTORY_RESERVED", "PAYMENT_COMPLETE"]
    );
    assert!(text.contains("✓ complete"), "{text}");
    let user_cell = browser
        .execute(
            "return document.querySelector(arguments[0]).textContent",
            vec![json!(format!(
                "tr[data-tx='{}'] td.user",
                hostile.transaction_id
            ))],
        )
        .await
        .expect("user cell");
    assert_eq!(user_cell, json!(HOSTILE_USER));
    let pwned = browser
        .execute("return window.__pwned === undefined", vec![])
        .await
        .expect("script");
    assert_eq!(pwned, Value::Bool(true), "a user id ran as a script");

    // A declined payment: the compensation, marked, in reverse order.
    let declined = choreography.place(&order("bob")).await.expect("order");
    row_of(&browser, &declined.transaction_id).await;
    let (names, text) = diagram(&browser, &declined.transaction_id, 4).await;
    assert_eq!(
        names,
        [
            "ORDER_CREATED",
            "INVENTORY_RESERVED",
            "ORDER_CANCEL",
            "ORDER_CANCEL"
        ]
    );
    assert!(text.contains("✗ cancelled — PAYMENT_DECLINED"), "{text}");
    assert!(text.contains("↺ compensation"), "{text}");
    screenshot(&browser, "declined").await;

    // Orchestration: commands and replies, through the orchestrator's lifeline.
    let orchestrated = orchestration.place(&order("bob")).await.expect("order");
    row_of(&browser, &orchestrated.transaction_id).await;
    let (names, text) = diagram(&browser, &orchestrated.transaction_id, 6).await;
    assert_eq!(
        names,
        [
            "RESERVE_STOCK",
            "STOCK_RESERVED",
            "TAKE_PAYMENT",
            "PAYMENT_DECLINED",
            "RELEASE_STOCK",
            "STOCK_RELEASED"
        ]
    );
    assert!(text.contains("orchestrator"), "{text}");
    // The orchestrator's state changes, from the order store, between the messages.
    let states = poll_script(
        &browser,
        "const s = [...document.querySelectorAll('#diagram .state-change')].map(n => n.dataset.state);
         return s.length >= 4 ? s : null;",
    )
    .await;
    assert_eq!(
        states,
        json!([
            "RESERVING_STOCK",
            "TAKING_PAYMENT",
            "RELEASING_STOCK",
            "CANCELLED"
        ])
    );
    let drawn = poll_script(
        &browser,
        "return [...document.querySelectorAll('#diagram > .arrow, #diagram > .state-change')]
             .map(n => n.dataset.name || n.dataset.state);",
    )
    .await;
    assert_eq!(
        drawn,
        json!([
            "RESERVING_STOCK",
            "RESERVE_STOCK",
            "STOCK_RESERVED",
            "TAKING_PAYMENT",
            "TAKE_PAYMENT",
            "PAYMENT_DECLINED",
            "RELEASING_STOCK",
            "RELEASE_STOCK",
            "STOCK_RELEASED",
            "CANCELLED"
        ]),
        "each state change where it happened"
    );
    let text = browser
        .find(Locator::Id("detail-pane"))
        .await
        .expect("detail pane")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("order in the store: ORDER_CANCEL (PAYMENT_DECLINED)"),
        "{text}"
    );
    screenshot(&browser, "orchestration").await;

    // Both styles: the demo's orders side by side, and each style's figures and traits.
    click(&browser, "tab-styles").await;
    let shown = browser
        .execute(
            "return [...document.querySelectorAll('main.view')]
                 .filter(v => getComputedStyle(v).display !== 'none').map(v => v.id)",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(shown, json!(["styles-view"]), "one view at a time");
    let pairs_state = r#"const rows = [...document.querySelectorAll('#pairs tbody tr')];
        const cells = rows.map(r => [...r.querySelectorAll('td.pair')]);
        if (rows.length < WANTED || !cells.flat().every(c => c.dataset.state && !['in_flight', 'stuck'].includes(c.dataset.state))) return null;
        return cells.map(row => row.map(c => `${c.dataset.style}:${c.dataset.state}`));"#;
    let demo = poll_script(&browser, &pairs_state.replace("WANTED", "2")).await;
    assert_eq!(
        demo,
        json!([
            ["choreography:complete", "orchestration:complete"],
            ["choreography:cancelled", "orchestration:cancelled"]
        ])
    );
    let figures = browser
        .find(Locator::Id("figures"))
        .await
        .expect("figures")
        .text()
        .await
        .expect("text");
    for wanted in [
        "messages per completed saga",
        "the order: saga_state, history, outbox",
        "the last event; each service's own rows",
    ] {
        assert!(figures.contains(wanted), "{wanted}:\n{figures}");
    }
    // The same order placed in each style from the page: bob's, declined in both.
    browser
        .execute(
            "$('place-user').value = 'bob'; $('place-button').click(); return true;",
            vec![],
        )
        .await
        .expect("place");
    let placed = poll_script(&browser, &pairs_state.replace("WANTED", "3")).await;
    assert_eq!(
        placed[2],
        json!(["choreography:cancelled", "orchestration:cancelled"]),
        "{placed}"
    );
    screenshot(&browser, "styles").await;
    // A form that is no order is refused with a reason, as JSON the page can show.
    let refused = reqwest::Client::new()
        .post(format!("http://{listen}/api/styles/orders"))
        .header("content-type", "application/json")
        .body(r#"{"user_id": "x", "item": 1e20, "quantity": 1}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.expect("a JSON error");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("an order is")),
        "{refused}"
    );
    // A pair's saga opens its diagram.
    let opened = poll_script(
        &browser,
        r#"const cell = document.querySelectorAll('#pairs tbody tr')[2].querySelector("td.pair[data-style='orchestration']");
           if (!document.querySelector('#detail-pane').textContent.includes(cell.dataset.tx)) { cell.click(); return null; }
           return document.querySelector('#sagas-view').hidden ? null : cell.dataset.tx;"#,
    )
    .await;
    assert!(opened.is_string(), "{opened}");

    // Each failure drill, from the page: it says what should happen, shows what did,
    // and ends with the checks, all ✓.
    let drills = browser
        .find_all(Locator::Css("#drill-buttons button"))
        .await
        .expect("drill buttons");
    assert_eq!(
        drills.len(),
        11,
        "five drills per style, and the orchestrator's crash"
    );
    for n in 0..drills.len() {
        let button = &browser
            .find_all(Locator::Css("#drill-buttons button"))
            .await
            .expect("drill buttons")[n];
        let name = button.text().await.expect("name");
        button.click().await.expect("click");
        let deadline = Instant::now() + Duration::from_secs(90);
        let report = loop {
            let report = browser
                .find(Locator::Id("drill-report"))
                .await
                .expect("report")
                .text()
                .await
                .expect("text");
            if report.contains("passed:") || report.contains("failed") || report.contains("✗") {
                break report;
            }
            assert!(Instant::now() < deadline, "drill {name}: {report}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!("drill {name}:\n{report}");
        assert!(report.contains("✓ passed"), "drill {name}:\n{report}");
        assert!(!report.contains('✗'), "drill {name}:\n{report}");
        assert!(report.contains("expected: "), "{report}");
    }
    screenshot(&browser, "drill").await;

    // The stop-payment drill's orchestrated saga timed out: its diagram shows the timer,
    // from when the payment step began to when it fired.
    let timer = poll_script(
        &browser,
        r#"const row = [...document.querySelectorAll('#sagas tbody tr')]
               .find(r => r.querySelector('.state').title === 'TIMEOUT');
           if (!row) return null;
           const timer = document.querySelector('#diagram .timer');
           if (!timer || !document.querySelector('#detail-pane').textContent.includes(row.dataset.tx)) {
               row.click();
               return null;
           }
           return timer.textContent;"#,
    )
    .await;
    let timer = timer.as_str().unwrap_or_default().to_string();
    assert!(
        timer.starts_with("⏱ timer of TAKING_PAYMENT: set +") && timer.contains("fired +"),
        "{timer}"
    );
    screenshot(&browser, "timeout").await;

    // The Topics tab: the poison message, which names no saga, in its dead-letter topic,
    // its body on demand.
    click(&browser, "tab-topics").await;
    let body = poll_script(
        &browser,
        r#"const topic = [...document.querySelectorAll('#topic-list button')]
               .find(b => b.dataset.topic.endsWith('inventory.dlq'));
           if (!topic) return null;
           if (!topic.classList.contains('chosen')) { topic.click(); return null; }
           const row = [...document.querySelectorAll('#messages tbody tr')]
               .find(r => r.querySelector('.key').textContent.startsWith('drill-poison-'));
           if (!row) return null;
           if ($('body').className === 'hint') { row.click(); return null; }
           return $('body').textContent;"#,
    )
    .await;
    assert_eq!(body, json!("this is not a saga message"));
    screenshot(&browser, "topics").await;

    // The Stock tab: the declined order's two changes, -1 then +1; its saga one click away.
    click(&browser, "tab-stock").await;
    let changes = poll_script(
        &browser,
        &format!(
            r##"const rows = [...document.querySelectorAll("#stock tr[data-tx='{tx}']")];
               if (rows.length < 2) return null;
               const units = rows.map(r => r.children[2].textContent).reverse();
               rows[0].querySelector('.tx').click();
               return units;"##,
            tx = declined.transaction_id
        ),
    )
    .await;
    assert_eq!(changes, json!(["-1", "+1"]), "oldest first");
    let (_, text) = diagram(&browser, &declined.transaction_id, 4).await;
    assert!(text.contains("✗ cancelled — PAYMENT_DECLINED"), "{text}");

    // A narrow window (a phone, half a laptop screen): no tab runs off the page's side;
    // a wide table or diagram scrolls in its own pane.
    browser.set_window_size(400, 900).await.expect("resize");
    for tab in [
        "tab-sagas",
        "tab-topics",
        "tab-stock",
        "tab-consumers",
        "tab-styles",
    ] {
        click(&browser, tab).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let overflow = browser
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .expect("script");
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 1),
            "{tab} is {overflow} px wider than a 400 px window"
        );
    }
    click(&browser, "tab-sagas").await;
    diagram(&browser, &declined.transaction_id, 4).await;
    let _ = browser.execute("window.scrollTo(0, 0)", vec![]).await;
    screenshot(&browser, "narrow").await;

    let errors = browser
        .execute("return window.__viewErrors", vec![])
        .await
        .expect("script");
    assert_eq!(errors, json!([]), "the page logged errors");
    let _ = browser.close().await;

    let status = lab.terminate();
    assert!(
        status.success(),
        "Ctrl-C ends the lab well: {status}\n{}",
        lab.output()
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edm_ui_follows_a_running_stack_in_both_styles() {
    let lab = Lab::start(Services::all(Gateway::DeclineUser("bob".into()))).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut ui = EdmProcess::spawn(&lab.config, "ui", &["--listen", &listen]);
    ui.wait_for_output("web view of the sagas", Duration::from_secs(30))
        .await;
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    let mut stream = http
        .get(format!("{base}/api/stream"))
        .send()
        .await
        .expect("stream");

    let orders = OrderClient::new(&lab.order_url);
    let accepted = orders.place(&order("alice")).await.expect("order");
    let took = streamed(&mut stream, &accepted.transaction_id).await;
    eprintln!("streamed {took:?} after the order was accepted");
    let declined = orders.place(&order("bob")).await.expect("order");
    for (tx, state, reason, stored) in [
        (
            &accepted.transaction_id,
            "complete",
            Value::Null,
            "ORDER_COMPLETE",
        ),
        (
            &declined.transaction_id,
            "cancelled",
            json!("PAYMENT_DECLINED"),
            "ORDER_CANCEL",
        ),
    ] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let saga: Value = get_json(&http, format!("{base}/api/sagas/{tx}")).await;
            // The order store (the services' flags) says how the order ended.
            if saga["state"] == state && saga["stored"]["status"] == stored {
                assert_eq!(saga["reason"], reason, "{saga}");
                assert_eq!(saga["stored"]["reason"], reason, "{saga}");
                assert_eq!(saga["style"], "choreography", "{saga}");
                break;
            }
            assert!(Instant::now() < deadline, "saga {tx}: {saga}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let list: Value = get_json(
        &http,
        format!("{base}/api/sagas?q={}", &declined.transaction_id[..8]),
    )
    .await;
    assert_eq!(list["matched"], 1, "{list}");
    // The Stock tab reads the stack's inventory (the services' --mysql-url): the declined
    // order's stock taken and given back, the accepted one's taken.
    let stock: Value = get_json(&http, format!("{base}/api/stock")).await;
    assert_eq!(stock[0]["name"], "stack", "{stock}");
    assert_eq!(
        stock[0]["items"].as_array().map(Vec::len),
        Some(5),
        "{stock}"
    );
    let changes = |tx: &str| -> Vec<i64> {
        let mut units: Vec<i64> = stock[0]["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|row| row["transaction_id"] == tx)
            .filter_map(|row| row["quantity"].as_i64())
            .collect();
        units.reverse(); // newest first on the wire
        units
    };
    assert_eq!(changes(&declined.transaction_id), [-1, 1], "{stock}");
    assert_eq!(changes(&accepted.transaction_id), [-1], "{stock}");
    let missing = http
        .get(format!("{base}/api/sagas/no-such-saga"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);

    drop(stream);
    let status = ui.terminate();
    assert!(status.success(), "{status}\n{}", ui.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_scrolls_and_searches_with_20000_sagas() {
    const SAGAS: usize = 20_000;
    let config = LabConfig::fresh();
    config.prepare().await;
    // Twenty thousand sagas stopped at their first step, as dead letters: no service
    // reads those, so the lab's stores are not involved.
    let kafka = edm::kafka::Kafka::connect(&config.kafka)
        .await
        .expect("Kafka");
    let topic = edm::kafka::Topics::dead_letter(&kafka.topics.inventory);
    let records: Vec<edm::kafka::Record> = (0..SAGAS)
        .map(|n| {
            let tx = format!("load-{n:05}-{}", config.id);
            edm::kafka::Record {
                topic: topic.clone(),
                key: Some(tx.clone()),
                payload: json!({"transaction_id": tx, "status": "ORDER_CREATED",
                                "order": {"user_id": format!("user-{n}")}})
                .to_string()
                .into_bytes(),
                headers: Vec::new(),
            }
        })
        .collect();
    let producer = kafka.producer().expect("producer");
    for sent in producer.send_all(&records).await {
        sent.expect("sent");
    }

    let listen = format!("127.0.0.1:{}", free_port());
    let mut ui = EdmProcess::spawn(&config, "ui", &["--listen", &listen]);
    ui.wait_for_output("web view of the sagas", Duration::from_secs(30))
        .await;
    let driver = Driver::start();
    let browser = driver.browser().await;
    let opened = Instant::now();
    browser
        .goto(&format!("http://{listen}/"))
        .await
        .expect("open the view");
    let counts = || async {
        browser
            .find(Locator::Id("counts"))
            .await
            .expect("counts")
            .text()
            .await
            .expect("text")
    };
    let all = format!("500 shown of {SAGAS}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts().await != all {
        assert!(Instant::now() < deadline, "{} after 60 s", counts().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{all} {:?} after the page was opened", opened.elapsed());

    let scrolled = browser
        .execute(
            "window.scrollTo(0, document.body.scrollHeight); return window.scrollY",
            vec![],
        )
        .await
        .expect("scroll");
    assert!(scrolled.as_f64().is_some_and(|y| y > 0.0), "{scrolled}");

    let wanted = format!("load-12345-{}", config.id);
    let searched = Instant::now();
    browser
        .find(Locator::Id("search"))
        .await
        .expect("search box")
        .send_keys(&wanted)
        .await
        .expect("type");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = browser
            .execute(
                "return [...document.querySelectorAll('#sagas tbody tr')].map(r => r.dataset.tx)",
                vec![],
            )
            .await
            .expect("rows");
        if rows == json!([wanted]) {
            break;
        }
        assert!(Instant::now() < deadline, "search: {rows}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("found 1 of {SAGAS} {:?} after typing", searched.elapsed());
    let errors = browser
        .execute("return window.__viewErrors", vec![])
        .await
        .expect("script");
    assert_eq!(errors, json!([]), "the page logged errors");
    let _ = browser.close().await;
    assert!(ui.terminate().success(), "{}", ui.output());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumers_tab_shows_what_a_stopped_service_leaves_waiting() {
    let config = LabConfig::fresh();
    config.prepare_with_partitions(2).await;
    let order_port = free_port();
    let order_listen = format!("127.0.0.1:{order_port}");
    let _services = [
        EdmProcess::spawn(&config, "order-service", &["--listen", &order_listen]),
        EdmProcess::spawn(&config, "inventory-consumer", &[]),
        EdmProcess::spawn(&config, "order-consumer", &[]),
    ];
    let mut payment = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]);
    wait_port(order_port, true, Duration::from_secs(30));
    let listen = format!("127.0.0.1:{}", free_port());
    let mut ui = EdmProcess::spawn(&config, "ui", &["--listen", &listen]);
    ui.wait_for_output("web view of the sagas", Duration::from_secs(30))
        .await;
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    let orders = OrderClient::new(&format!("http://{order_listen}"));
    let group = format!(
        "{}{}",
        config.kafka.topic_prefix,
        edm::services::payment_consumer::GROUP
    );

    // One saga through: every group of the style has committed, nothing waits.
    orders.place(&order("alice")).await.expect("order");
    let running = group_when(&http, &base, &group, |g| {
        let committed = g["partitions"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["committed"].is_i64()));
        g["members"] == 1 && total_lag(g) == 0 && committed
    })
    .await;
    assert_eq!(
        running["topic"],
        format!("{}payment", config.kafka.topic_prefix)
    );
    assert_eq!(running["style"], "choreography");

    // The payment consumer stops; the next saga's event waits for it, and ages.
    assert!(payment.terminate().success(), "{}", payment.output());
    orders.place(&order("bob")).await.expect("order");
    group_when(&http, &base, &group, |g| {
        g["members"] == 0 && total_lag(g) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = group_when(&http, &base, &group, |g| {
        total_lag(g) == 1
            && g["partitions"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["lag_ms"].as_i64() >= Some(1500)))
    })
    .await;
    eprintln!("a stopped payment consumer: {waiting}");

    // The page shows it: the group's row with its lag, the service with no member.
    let driver = Driver::start();
    let browser = driver.browser().await;
    browser
        .goto(&format!("{base}/"))
        .await
        .expect("open the view");
    click(&browser, "tab-consumers").await;
    let shown = poll_script(
        &browser,
        &format!(
            r##"const rows = [...document.querySelectorAll("#consumers tr[data-group='{group}']")];
               const lagging = rows.find(r => r.dataset.lag === "1");
               return lagging ? lagging.textContent : null;"##
        ),
    )
    .await;
    let shown = shown.as_str().unwrap_or_default().to_string();
    assert!(shown.ends_with(" s"), "waiting for seconds: {shown}");
    screenshot(&browser, "consumers").await;
    let errors = browser
        .execute("return window.__viewErrors", vec![])
        .await
        .expect("script");
    assert_eq!(errors, json!([]), "the page logged errors");
    let _ = browser.close().await;

    // Started again, it catches up: nothing waits.
    payment.restart();
    group_when(&http, &base, &group, |g| {
        g["members"] == 1 && total_lag(g) == 0
    })
    .await;
    assert!(ui.terminate().success(), "{}", ui.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_is_followed_live_and_its_view_stays_after_the_report() {
    const ORDERS: usize = 300;
    let config = LabConfig::fresh();
    let listen = format!("127.0.0.1:{}", free_port());
    let orders = ORDERS.to_string();
    let mut lab = EdmProcess::spawn(
        &config,
        "lab",
        &[
            "--orders",
            &orders,
            "--concurrency",
            "16",
            "--ui",
            "--listen",
            &listen,
        ],
    );
    lab.wait_for_output("web view of the sagas", Duration::from_secs(60))
        .await;
    let base = format!("http://{listen}");
    let http = reqwest::Client::new();
    let mut stream = http
        .get(format!("{base}/api/stream"))
        .send()
        .await
        .expect("stream");
    // Live: sagas stream while the load runs.
    streamed(&mut stream, "event: sagas").await;
    drop(stream);
    // After the report the view stays, with every saga of the run (and the warm-up's).
    lab.wait_for_output("the web view stays", Duration::from_secs(120))
        .await;
    assert!(lab.output().contains("cpu        "), "{}", lab.output());
    let deadline = Instant::now() + Duration::from_secs(30);
    let figures = loop {
        let styles: Value = get_json(&http, format!("{base}/api/styles")).await;
        let choreography = styles["figures"][0].clone();
        let ended = choreography["complete"].as_u64().unwrap_or(0)
            + choreography["cancelled"].as_u64().unwrap_or(0);
        if ended == ORDERS as u64 + 1 {
            break choreography;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(60),
            "{styles}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(figures["messages_complete"], json!(3.0), "{figures}");
    let status = lab.terminate();
    assert!(status.success(), "{status}\n{}", lab.output());
}

/// The JSON answer of `GET url` (`null` when it is none: a poll tries again).
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    let answer = http.get(url).send().await.expect("GET");
    answer.json().await.unwrap_or(Value::Null)
}
