//! `edm lab --saga both --ui` in the browser: sagas listed live, diagrams with their
//! compensations and state changes, every drill from the page, and each tab.

use super::*;

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
    let text = text_of(&browser, "detail-pane").await;
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
    let figures = text_of(&browser, "figures").await;
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
            let report = text_of(&browser, "drill-report").await;
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
