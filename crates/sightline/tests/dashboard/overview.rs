//! Logging in, and the overview's live counters, rate chart and noisiest services, fed by
//! posted events and by the real simulator.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, Node};

#[tokio::test]
async fn an_operator_logs_in_and_sees_live_counters_move() {
    let node = Node::start("").await;
    let mut browser = Browser::start("overview-live").await;

    // Anonymous visitors land on the login page; a wrong password is refused in place.
    browser.client.goto(&node.url("/")).await.unwrap();
    browser
        .element("#username")
        .await
        .send_keys("viewer")
        .await
        .unwrap();
    browser
        .element("#password")
        .await
        .send_keys("wrong password")
        .await
        .unwrap();
    browser
        .element("#login-submit")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until_text("#login-error", "Wrong username or password")
        .await;
    browser.screenshot("login-refused").await;

    browser.login(&node, "viewer").await;
    browser.until_text("#whoami", "viewer").await;
    // A reload keeps the session (it lives in the tab's session storage).
    browser.open(&node, "#/").await;
    browser.client.refresh().await.unwrap();
    browser.until_text("#whoami", "viewer").await;
    // Load time, read off the browser's Performance timeline (reported, not asserted:
    // timing targets live in benchmarks).
    let rendered = browser
        .until("the overview's render mark", || async {
            let mark = browser
                .client
                .execute(
                    "const m = performance.getEntriesByName('sightline:rendered:overview');\
                     return m.length ? m[0].startTime : null;",
                    vec![],
                )
                .await
                .ok()?;
            mark.as_f64()
        })
        .await;
    eprintln!("dashboard load: navigation to overview rendered in {rendered:.0} ms");
    browser.until_live().await;
    browser.screenshot("overview-empty").await;

    let events: Vec<_> = (0..30)
        .map(|i| {
            json!({"service_name": "checkout", "event_type": "ERROR",
                   "severity": if i % 3 == 0 { "critical" } else { "low" },
                   "details": format!("payment timeout {i}")})
        })
        .collect();
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/events/batch",
            Some(json!(events)),
        )
        .await;
    assert!(status < 300, "{status} {answer}");

    browser.until_text("#live-events-total", "30").await;
    browser.until_text("[data-severity=critical]", "10").await;
    browser.until_text("[data-severity=low]", "20").await;
    browser.screenshot("overview-counted").await;
    browser.close().await;
}

/// The number shown in the element matching `css` (thousands separators dropped).
async fn count(browser: &Browser, css: &str) -> u64 {
    let text = browser.text(css).await;
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// Whether any line of the rate chart leaves the zero line, and the chart's path data.
const RATE_CHART: &str = "const paths = [...document.querySelectorAll('#rate-chart path.line')];
    const moved = paths.some((p) => {
      const ys = [...(p.getAttribute('d') || '').matchAll(/[ML][-\\d.]+,([-\\d.]+)/g)].map((m) => Number(m[1]));
      return ys.length > 1 && Math.min(...ys) < Math.max(...ys);
    });
    return [moved, paths.map((p) => p.getAttribute('d')).join('|')];";

#[tokio::test]
async fn counters_rate_chart_and_top_services_move_while_the_simulator_runs() {
    let node = Node::start("").await;
    let (status, key) = node
        .call(
            "admin",
            Method::POST,
            "/api/v1/keys",
            Some(json!({"name": "simulator", "scopes": ["ingest:events", "ingest:metrics"]})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let token = key["token"].as_str().expect("token").to_owned();

    let mut browser = Browser::start("overview-simulator").await;
    browser.login(&node, "viewer").await;
    browser.element("#rate-chart svg").await;
    browser.until_live().await;
    let (moved, _) = rate_chart(&browser).await;
    assert!(!moved, "the rate chart shows events before any were sent");

    let simulator = tokio::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "simulate",
            "--target",
            &node.base,
            "--rate",
            "200",
            "--duration",
            "5s",
            "--json",
        ])
        .env("SIGHTLINE_API_KEY", &token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the simulator");

    // Layout shifts while live data pours in (the Layout Instability API): counters,
    // charts and tables have fixed sizes, so arriving data must not move the page.
    browser
        .client
        .execute(
            "window.__layoutShift = 0;\
             new PerformanceObserver((list) => { for (const e of list.getEntries()) \
               { if (!e.hadRecentInput) window.__layoutShift += e.value; } })\
               .observe({type: 'layout-shift'});",
            vec![],
        )
        .await
        .unwrap();

    // While it runs, the total grows between two reads and the chart leaves zero.
    let first = browser
        .until("the first simulated events", || async {
            let n = count(&browser, "#live-events-total").await;
            (n > 0).then_some(n)
        })
        .await;
    let before = browser
        .until("the rate chart to leave zero", || async {
            let (moved, paths) = rate_chart(&browser).await;
            moved.then_some(paths)
        })
        .await;
    browser.screenshot("simulator-running").await;
    let second = browser
        .until("the total to grow", || async {
            let n = count(&browser, "#live-events-total").await;
            (n > first).then_some(n)
        })
        .await;
    assert!(second > first);
    browser
        .until("the rate chart to move on", || async {
            let (moved, paths) = rate_chart(&browser).await;
            (moved && paths != before).then_some(())
        })
        .await;
    browser
        .until("events/s above zero", || async {
            (count(&browser, "#live-rate").await > 0).then_some(())
        })
        .await;
    let services: Vec<&str> = sightline_sim::service_names().collect();
    let listed = browser
        .until("a simulated service in the noisiest services", || async {
            let text = browser.text("#top-services").await;
            services.iter().any(|s| text.contains(s)).then_some(text)
        })
        .await;
    assert!(!listed.contains("?"), "{listed}");

    let out = simulator.wait_with_output().await.expect("simulator");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("report: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{report}");
    let acknowledged = report["acknowledged"].as_u64().expect("acknowledged");
    assert!(acknowledged >= 500, "{report}");
    // Every acknowledged event reaches the counter (the page opened before they were sent).
    browser
        .until("every acknowledged event counted", || async {
            (count(&browser, "#live-events-total").await == acknowledged).then_some(())
        })
        .await;
    // The health panel lists the event topic with the store sink's lag from /metrics.
    let lag: Value = browser
        .until("the sink lag of system-events", || async {
            let row: Value = browser
                .client
                .execute(
                    "const row = [...document.querySelectorAll('#topics tbody tr')]
                       .find((r) => r.cells[0].textContent === 'system-events');
                     return row ? row.cells[4].textContent : null;",
                    vec![],
                )
                .await
                .ok()?;
            row.as_str()
                .is_some_and(|t| t.chars().any(|c| c.is_ascii_digit()))
                .then_some(row)
        })
        .await;
    assert!(lag.is_string(), "{lag}");
    browser.screenshot("simulator-done").await;
    let shift = browser
        .client
        .execute("return window.__layoutShift;", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    eprintln!("cumulative layout shift while the simulator ran: {shift:.4}");
    // 0.1 is where the web's own guidance stops calling a page stable.
    assert!(
        shift < 0.1,
        "the overview moved while data arrived: CLS {shift}"
    );
    browser.close().await;
}

async fn rate_chart(browser: &Browser) -> (bool, String) {
    let answer = browser
        .client
        .execute(RATE_CHART, vec![])
        .await
        .expect("read the rate chart");
    (
        answer[0].as_bool().unwrap_or(false),
        answer[1].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn open_incidents_by_severity_are_loaded_then_kept_current() {
    let node = Node::start("").await;
    let create = |severity: &'static str, title: &'static str| {
        let node = &node;
        async move {
            let (status, incident) = node
                .call(
                    "engineer",
                    Method::POST,
                    "/api/v1/incidents",
                    Some(json!({"title": title, "severity": severity, "service_name": "checkout"})),
                )
                .await;
            assert_eq!(status, 201, "{incident}");
            incident["id"].as_str().expect("id").to_owned()
        }
    };
    // Opened before the page: counted from the REST API.
    create("critical", "Checkout is down").await;

    let mut browser = Browser::start("overview-incidents").await;
    browser.login(&node, "viewer").await;
    browser
        .until_text("[data-open-severity=critical]", "1")
        .await;
    browser.until_text("[data-open-severity=high]", "0").await;
    browser.until_text("#open-incidents-note", "1 open").await;
    browser.until_live().await;

    // Opened and then resolved while the page is open: followed on the stream.
    let id = create("high", "Payments are slow").await;
    browser.until_text("[data-open-severity=high]", "1").await;
    browser
        .until_text("#live-incidents", "Payments are slow")
        .await;
    browser.screenshot("incident-opened").await;
    let (status, answer) = node
        .call(
            "engineer",
            Method::PATCH,
            &format!("/api/v1/incidents/{id}"),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    browser.until_text("[data-open-severity=high]", "0").await;
    assert_eq!(browser.text("[data-open-severity=critical]").await, "1");
    browser.close().await;
}
