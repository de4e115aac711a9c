//! The view of a running stack (`edm ui`), of 20,000 sagas, of the consumer groups, and
//! of a load run (`edm lab --orders N --ui`).

use super::*;

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
    let mut stream = open_stream(&http, &base).await;

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
    let counts = || async { text_of(&browser, "counts").await };
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
    let http = reqwest::Client::new();
    let asked = Instant::now();
    let styles = get_json(&http, format!("http://{listen}/api/styles")).await;
    eprintln!(
        "the Both styles figures of {SAGAS} sagas in {:?}",
        asked.elapsed()
    );
    assert_eq!(
        styles["figures"][0]["sagas"], SAGAS,
        "{}",
        styles["figures"]
    );
    assert_eq!(styles["figures"][0]["open"], SAGAS, "{}", styles["figures"]);
    let errors = browser
        .execute("return window.__viewErrors", vec![])
        .await
        .expect("script");
    assert_eq!(errors, json!([]), "the page logged errors");
    let _ = browser.close().await;
    assert!(ui.terminate().success(), "{}", ui.output());
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
    let mut stream = open_stream(&http, &base).await;
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
