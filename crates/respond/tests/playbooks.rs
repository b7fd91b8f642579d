//! The playbook engine end to end on a real SQLite store, real processes and real
//! sockets: a firing runs a diagnostic command, pauses an approval-gated remediation,
//! resumes when approved and notifies a local webhook receiver; failures roll back in
//! reverse order; dry-runs render exactly what runs; hostile parameters stay one argv
//! element; a hanging command dies with its children at its timeout; SSRF targets are
//! refused before any connection.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sightline_model::{
    Clock, Event, Execution, ExecutionStatus, RenderedAction, ResponseTemplate, Severity,
    SourceType, StepStatus,
};
use sightline_respond::executor::{
    ExecutorConfig, HttpConfig, StepFailure, http::SIGNATURE_HEADER,
};
use sightline_respond::playbook::{Engine, PlaybookConfig, RunRequest};
use sightline_respond::{Actor, Firing, Subject, run_playbooks};
use sightline_store::{SqliteStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PRINTF: &str = "/usr/bin/printf";

/// A request the local webhook receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

/// A minimal HTTP/1.1 server on 127.0.0.1 recording every request (and answering 200,
/// or 500 for paths starting with `/fail`).
#[derive(Clone)]
struct Receiver {
    addr: std::net::SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.lines();
                    let path = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .unwrap_or("")
                        .to_owned();
                    let headers = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
                    let status = if path.starts_with("/fail") {
                        "500 Oops"
                    } else {
                        "200 OK"
                    };
                    sink.lock().unwrap().push(Received {
                        path,
                        headers,
                        body,
                    });
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "receiver got {} requests, expected {n}",
            self.requests().len()
        );
    }
}

fn event(details: &str) -> Event {
    Event {
        event_id: "ev-1".into(),
        service_name: "checkout".into(),
        event_type: "ERROR".into(),
        timestamp: 1_700_000_000_000,
        environment: "prod".into(),
        details: details.into(),
        severity: Severity::Critical,
        metadata: json!({"pod": "checkout-7"}).as_object().cloned().unwrap(),
        source: "test".into(),
        source_type: SourceType::Http,
        host: Some("web-1".into()),
        tags: Default::default(),
        fingerprint: "fp".into(),
        correlation_id: "c".into(),
        received_at: 1_700_000_000_000,
    }
}

fn firing(id: &str, template: &str, details: &str) -> Firing {
    Firing {
        id: id.into(),
        rule_id: "rule-1".into(),
        rule_name: "checkout errors".into(),
        response_template_id: Some(template.into()),
        subject: Subject::Event(Box::new(event(details))),
        group_key: "checkout".into(),
        match_count: 1,
        fired_at: 1_700_000_000_000,
    }
}

fn template(id: &str, steps: Value) -> ResponseTemplate {
    let t: ResponseTemplate =
        serde_json::from_value(json!({"id": id, "name": id, "steps": steps})).unwrap();
    t.validate().unwrap();
    t
}

struct Fixture {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

fn config(receiver: Option<&Receiver>, allowed: &[&str]) -> PlaybookConfig {
    PlaybookConfig {
        executors: ExecutorConfig {
            command: sightline_respond::executor::CommandConfig {
                allowed: allowed.iter().map(Into::into).collect(),
                path_env: None,
            },
            http: HttpConfig {
                allowed_urls: Vec::new(),
                allow_private: vec!["127.0.0.0/8".parse().unwrap()],
                signing_secret: Some("s3cret".into()),
            },
            smtp: None,
        },
        approval_channel: receiver.map(|r| sightline_model::playbook::NotifyChannel::Webhook {
            url: r.url("/approvals"),
            format: sightline_model::playbook::ChatFormat::Slack,
        }),
        ..PlaybookConfig::default()
    }
}

async fn fixture(config: PlaybookConfig) -> Fixture {
    fixture_at(config, Clock::system()).await
}

async fn fixture_at(config: PlaybookConfig, clock: Clock) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("store.db"))
            .await
            .unwrap(),
    );
    let engine = Engine::new(store.clone(), None, config, clock);
    Fixture {
        store,
        engine,
        _dir: dir,
    }
}

async fn wait_status(store: &Arc<dyn Store>, id: &str, want: ExecutionStatus) -> Execution {
    for _ in 0..1000 {
        let e = store.get_execution(id).await.unwrap().unwrap();
        if e.status == want {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let e = store.get_execution(id).await.unwrap().unwrap();
    panic!("execution stuck in {:?}: {e:#?}", e.status);
}

async fn only_execution(store: &Arc<dyn Store>) -> Vec<Execution> {
    store
        .query_executions(&sightline_store::ExecutionQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn token_from(message: &str) -> String {
    let start = message.find("\"token\":\"").unwrap() + 9;
    message[start..start + 64].to_owned()
}

#[tokio::test]
async fn a_firing_runs_diagnostics_waits_for_approval_then_remediates_and_notifies() {
    let receiver = Receiver::start().await;
    let f = fixture(config(Some(&receiver), &[PRINTF])).await;
    let t = template(
        "restart",
        json!([
            {"name": "diagnose", "kind": "diagnostic",
             "action": {"type": "command", "program": PRINTF, "args": ["svc=%s pod=%s", "{{subject.service_name}}", "{{subject.metadata.pod}}"]}},
            {"name": "restart", "kind": "remediation", "approval_required": true,
             "action": {"type": "http", "url": receiver.url("/restart?svc={{subject.service_name}}"),
                        "body": {"service": "{{subject.service_name}}", "rule": "{{rule.name}}"}}},
            {"name": "tell", "kind": "notification",
             "action": {"type": "notify", "channel": {"type": "webhook", "url": receiver.url("/chat"), "format": "slack"},
                        "message": "restarted {{subject.service_name}} after: {{subject.details}}"}}
        ]),
    );
    f.store.create_template(&t).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let engine = f.engine.clone();
    let runner = tokio::spawn(async move {
        let mut rx = rx;
        run_playbooks(engine, &mut rx, async move {
            let _ = stop_rx.await;
        })
        .await
    });
    tx.send(firing("f-1", "restart", "payment timeout"))
        .await
        .unwrap();

    let approvals = receiver.wait_for(1).await;
    assert_eq!(approvals[0].path, "/approvals");
    let text = approvals[0].body["text"].as_str().unwrap().to_owned();
    let executions = only_execution(&f.store).await;
    assert_eq!(executions.len(), 1);
    let id = executions[0].id.clone();
    assert!(
        text.contains(&format!("/api/v1/executions/{id}/approve")),
        "{text}"
    );
    let paused = wait_status(&f.store, &id, ExecutionStatus::AwaitingApproval).await;
    assert_eq!(paused.steps[0].status, StepStatus::Succeeded);
    assert!(
        paused.steps[0]
            .output
            .contains("svc=checkout pod=checkout-7"),
        "{}",
        paused.steps[0].output
    );
    assert_eq!(paused.steps[1].status, StepStatus::AwaitingApproval);
    assert_eq!(paused.steps[2].status, StepStatus::Pending);

    // A replayed firing starts nothing.
    tx.send(firing("f-1", "restart", "payment timeout"))
        .await
        .unwrap();
    // A wrong token changes nothing.
    let approver = Actor {
        name: "alice".into(),
        kind: sightline_model::ActorKind::User,
    };
    let wrong = f.engine.decide(&id, &"0".repeat(64), true, &approver).await;
    assert!(
        matches!(wrong, Err(sightline_respond::RespondError::BadToken)),
        "{wrong:?}"
    );

    let token = token_from(&text);
    f.engine.decide(&id, &token, true, &approver).await.unwrap();
    let done = wait_status(&f.store, &id, ExecutionStatus::Succeeded).await;
    assert_eq!(done.steps[1].approved_by.as_deref(), Some("alice"));
    // Single use.
    let again = f.engine.decide(&id, &token, true, &approver).await;
    assert!(
        matches!(again, Err(sightline_respond::RespondError::Conflict(_))),
        "{again:?}"
    );

    let got = receiver.wait_for(3).await;
    let restart = got.iter().find(|r| r.path.starts_with("/restart")).unwrap();
    assert_eq!(restart.path, "/restart?svc=checkout");
    assert_eq!(
        restart.body,
        json!({"service": "checkout", "rule": "checkout errors"})
    );
    let signature = restart
        .headers
        .iter()
        .find(|(k, _)| k == SIGNATURE_HEADER)
        .map(|(_, v)| v.clone())
        .unwrap();
    let body = serde_json::to_vec(&restart.body).unwrap();
    assert_eq!(
        signature,
        sightline_auth::webhook::sign_hub(b"s3cret", &body)
    );
    let chat = got.iter().find(|r| r.path == "/chat").unwrap();
    assert_eq!(
        chat.body,
        json!({"text": "restarted checkout after: payment timeout"})
    );

    assert_eq!(
        only_execution(&f.store).await.len(),
        1,
        "the replayed firing ran again"
    );
    let audit = f
        .store
        .query_audit(&sightline_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = audit.items.iter().map(|a| a.action.as_str()).collect();
    for want in [
        "execution.start",
        "execution.awaiting_approval",
        "execution.approve",
        "execution.succeeded",
    ] {
        assert!(actions.contains(&want), "audit lacks {want}: {actions:?}");
    }
    stop_tx.send(()).unwrap();
    runner.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failing_step_rolls_completed_steps_back_in_reverse_order() {
    let receiver = Receiver::start().await;
    let f = fixture(config(None, &[])).await;
    let undo =
        |name: &str| json!({"type": "http", "url": receiver.url("/undo"), "body": {"undo": name}});
    let t = template(
        "three",
        json!([
            {"name": "a", "kind": "remediation", "action": {"type": "noop"}, "rollback": [undo("a")]},
            {"name": "b", "kind": "remediation", "action": {"type": "noop"}, "rollback": [undo("b1"), undo("b2")]},
            {"name": "c", "kind": "remediation", "action": {"type": "http", "url": receiver.url("/fail")}, "rollback": [undo("c")]},
            {"name": "d", "kind": "notification", "action": {"type": "noop"}}
        ]),
    );
    let mut request =
        RunRequest::for_subject(t, Subject::Event(Box::new(event("x"))), Actor::system());
    request.rollback_on_failure = true;
    let started = f.engine.start(request).await.unwrap().unwrap();
    let done = wait_status(&f.store, &started.id, ExecutionStatus::RolledBack).await;
    let statuses: Vec<_> = done.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            StepStatus::RolledBack,
            StepStatus::RolledBack,
            StepStatus::Failed,
            StepStatus::Skipped
        ]
    );
    assert!(
        done.steps[2].error.as_deref().unwrap().contains("500"),
        "{:?}",
        done.steps[2]
    );
    let undone: Vec<_> = receiver
        .requests()
        .iter()
        .filter(|r| r.path == "/undo")
        .map(|r| r.body["undo"].as_str().unwrap().to_owned())
        .collect();
    // Step b's rollback (its actions in their own order), then step a's; never c's.
    assert_eq!(undone, ["b1", "b2", "a"]);

    // Without rollback_on_failure the run just fails.
    let t = template(
        "plain",
        json!([
            {"name": "a", "kind": "remediation", "action": {"type": "noop"}, "rollback": [undo("z")]},
            {"name": "b", "kind": "remediation", "action": {"type": "noop", "fail": true}}
        ]),
    );
    let request = RunRequest::for_subject(t, Subject::Event(Box::new(event("x"))), Actor::system());
    let started = f.engine.start(request).await.unwrap().unwrap();
    let done = wait_status(&f.store, &started.id, ExecutionStatus::Failed).await;
    assert_eq!(done.steps[0].status, StepStatus::Succeeded);
    assert!(!receiver.requests().iter().any(|r| r.body["undo"] == "z"));
}

/// Template whose one step prints each argument it gets in brackets, one per line.
fn argv_template() -> ResponseTemplate {
    template(
        "argv",
        json!([{"name": "print", "kind": "diagnostic",
            "action": {"type": "command", "program": PRINTF,
                       "args": ["[%s]\\n", "{{subject.details}}", "{{subject.service_name}}"]}}]),
    )
}

#[tokio::test]
async fn dry_run_renders_exactly_the_argv_that_runs_and_hostile_text_stays_one_argument() {
    let marker = tempfile::tempdir().unwrap();
    let pwned = marker.path().join("pwned");
    let hostile = format!(
        "; rm -rf / ; touch {p} $(touch {p}) `touch {p}` && echo hi\nsecond line | cat > {p}",
        p = pwned.display()
    );
    let f = fixture(config(None, &[PRINTF])).await;
    let subject = Subject::Event(Box::new(event(&hostile)));

    let mut dry = RunRequest::for_subject(argv_template(), subject.clone(), Actor::system());
    dry.dry_run = true;
    let dry = f.engine.start(dry).await.unwrap().unwrap();
    assert_eq!(dry.status, ExecutionStatus::DryRun);
    assert_eq!(dry.steps[0].status, StepStatus::DryRun);
    assert!(dry.steps[0].output.is_empty() && dry.steps[0].started_at.is_none());

    let run = RunRequest::for_subject(argv_template(), subject, Actor::system());
    let run = f.engine.start(run).await.unwrap().unwrap();
    let done = wait_status(&f.store, &run.id, ExecutionStatus::Succeeded).await;

    let argv = vec![
        PRINTF.to_owned(),
        "[%s]\\n".to_owned(),
        hostile.clone(),
        "checkout".to_owned(),
    ];
    assert_eq!(
        dry.steps[0].rendered,
        Some(RenderedAction::Command { argv: argv.clone() })
    );
    assert_eq!(
        done.steps[0].rendered, dry.steps[0].rendered,
        "dry-run argv differs from executed argv"
    );
    // printf repeats its format per argument: exactly two bracketed lines means exactly
    // two arguments, the first one the whole hostile text, uninterpreted.
    let stdout = done.steps[0]
        .output
        .split("--- stdout ---\n")
        .nth(1)
        .and_then(|s| s.split("\n--- stderr ---").next())
        .unwrap();
    assert_eq!(stdout, format!("[{hostile}]\n[checkout]\n"));
    assert!(!pwned.exists(), "a shell interpreted the parameter");
}

fn process_alive(pid: i32) -> bool {
    // A zombie (killed, not yet reaped by an init that does not reap) counts as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let f = fixture(config(None, &["/bin/sh"])).await;
    // The shell starts a long sleep in the background, records its pid, and waits for it.
    let t = template(
        "hang",
        json!([{"name": "hang", "kind": "diagnostic", "max_execution_time": 1,
            "action": {"type": "command", "program": "/bin/sh",
                       "args": ["-c", format!("sleep 300 & echo $! > {}; wait", pid_file.display())]}}]),
    );
    let started_at = Instant::now();
    let run = RunRequest::for_subject(t, Subject::Event(Box::new(event("x"))), Actor::system());
    let run = f.engine.start(run).await.unwrap().unwrap();
    let done = wait_status(&f.store, &run.id, ExecutionStatus::Failed).await;
    let elapsed = started_at.elapsed();
    assert!(
        done.steps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("timed out"),
        "{:?}",
        done.steps[0]
    );
    let child: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut alive = true;
    for _ in 0..100 {
        alive = process_alive(child);
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!alive, "the background child {child} outlived the timeout");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}

#[tokio::test]
async fn ssrf_targets_are_refused_before_connecting() {
    // A listener on loopback that must never see a connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let strict = HttpConfig::default();
    let limit = Duration::from_secs(2);
    for url in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "http://[::ffff:169.254.169.254]/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        format!("http://127.0.0.1:{port}/admin"),
        format!("http://localhost:{port}/admin"),
        format!("http://[::1]:{port}/admin"),
    ] {
        let started = Instant::now();
        let err: StepFailure = strict
            .send(
                sightline_model::playbook::HttpMethod::Post,
                &url,
                &Default::default(),
                Some(&json!({})),
                limit,
            )
            .await
            .unwrap_err();
        assert!(err.refused, "{url}: {err:?}");
        assert!(
            err.message.contains("internal address"),
            "{url}: {}",
            err.message
        );
        assert!(started.elapsed() < limit, "{url} was attempted");
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a refused request reached the listener");
    // The same engine path: an http step to the metadata service fails as refused.
    let f = fixture(PlaybookConfig::default()).await;
    let t = template(
        "ssrf",
        json!([{"name": "steal", "kind": "diagnostic",
        "action": {"type": "http", "method": "GET", "url": "http://169.254.169.254/latest/meta-data/"}}]),
    );
    let run = RunRequest::for_subject(t, Subject::Event(Box::new(event("x"))), Actor::system());
    let run = f.engine.start(run).await.unwrap().unwrap();
    let done = wait_status(&f.store, &run.id, ExecutionStatus::Failed).await;
    assert!(
        done.steps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("internal address")
    );
}

#[tokio::test]
async fn risky_automatic_runs_wait_for_approval_and_frozen_ones_are_refused() {
    let mut cfg = config(None, &[]);
    cfg.safety.change_freezes = vec![sightline_respond::safety::ChangeFreeze {
        starts_at: 0,
        ends_at: i64::MAX,
        reason: "quarter end".into(),
    }];
    let f = fixture(cfg).await;
    let mut t = template(
        "risky",
        json!([{"name": "a", "kind": "remediation", "action": {"type": "noop"}}]),
    );
    t.risk_level = sightline_model::RiskLevel::High;
    let started = f
        .engine
        .start(RunRequest::for_firing(
            &firing("f-9", "risky", "x"),
            t,
            true,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.status, ExecutionStatus::Rejected);
    assert!(started.reason.as_deref().unwrap().contains("quarter end"));

    let f = fixture(config(None, &[])).await;
    let mut t = template(
        "risky",
        json!([{"name": "a", "kind": "remediation", "action": {"type": "noop"}}]),
    );
    t.risk_level = sightline_model::RiskLevel::High;
    let started = f
        .engine
        .start(RunRequest::for_firing(
            &firing("f-10", "risky", "x"),
            t,
            true,
        ))
        .await
        .unwrap()
        .unwrap();
    let paused = wait_status(&f.store, &started.id, ExecutionStatus::AwaitingApproval).await;
    assert!(paused.steps[0].approval_required);
    assert!(
        paused
            .reason
            .as_deref()
            .unwrap()
            .contains("approval required")
    );
}

#[tokio::test]
async fn unanswered_approvals_expire_and_end_their_runs() {
    let clock = Clock::manual(1_700_000_000_000);
    let mut cfg = config(None, &[]);
    cfg.approval_ttl_secs = 600;
    cfg.approval_sweep_secs = 1;
    let f = fixture_at(cfg, clock.clone()).await;
    let gated = json!([{"name": "fix", "kind": "remediation", "approval_required": true,
                        "action": {"type": "noop"}}]);
    let t = template("gated", gated);
    let start = |firing_id: &'static str| {
        RunRequest::for_firing(&firing(firing_id, "gated", "x"), t.clone(), true)
    };
    let old = f.engine.start(start("f-old")).await.unwrap().unwrap();
    wait_status(&f.store, &old.id, ExecutionStatus::AwaitingApproval).await;
    clock.advance(400_000);
    let young = f.engine.start(start("f-young")).await.unwrap().unwrap();
    wait_status(&f.store, &young.id, ExecutionStatus::AwaitingApproval).await;

    // Nothing has expired yet.
    assert_eq!(f.engine.expire_approvals().await.unwrap(), 0);
    // The first request is 11 minutes old, the second 4: only the first ends.
    clock.advance(260_000);
    assert_eq!(f.engine.expire_approvals().await.unwrap(), 1);
    let ended = f.store.get_execution(&old.id).await.unwrap().unwrap();
    assert_eq!(ended.status, ExecutionStatus::Rejected);
    assert_eq!(ended.reason.as_deref(), Some("approval expired"));
    assert_eq!(ended.steps[0].status, StepStatus::Skipped);
    let waiting = f.store.get_execution(&young.id).await.unwrap().unwrap();
    assert_eq!(waiting.status, ExecutionStatus::AwaitingApproval);
    assert_eq!(f.engine.expire_approvals().await.unwrap(), 0, "ended once");
    let audit = f
        .store
        .query_audit(&sightline_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|a| a.action == "execution.approval_expired"
                && a.target.as_deref() == Some(old.id.as_str())),
        "{audit:#?}"
    );

    // The engine's own loop sweeps too: the second request expires while it runs.
    clock.advance(600_000);
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let engine = f.engine.clone();
    let runner = tokio::spawn(async move {
        let mut rx = rx;
        run_playbooks(engine, &mut rx, async move {
            let _ = stop_rx.await;
        })
        .await
    });
    let swept = wait_status(&f.store, &young.id, ExecutionStatus::Rejected).await;
    assert_eq!(swept.reason.as_deref(), Some("approval expired"));
    let _ = stop_tx.send(());
    runner.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_signed_in_approver_decides_without_the_token_which_is_then_spent() {
    let f = fixture(config(None, &[])).await;
    let gated = json!([{"name": "fix", "kind": "remediation", "approval_required": true,
                        "action": {"type": "noop"}}]);
    let run = f
        .engine
        .start(RunRequest::for_firing(
            &firing("f-role", "gated", "x"),
            template("gated", gated),
            true,
        ))
        .await
        .unwrap()
        .unwrap();
    wait_status(&f.store, &run.id, ExecutionStatus::AwaitingApproval).await;
    let bob = Actor {
        name: "bob".into(),
        kind: sightline_model::ActorKind::User,
    };
    f.engine
        .decide_as_approver(&run.id, true, &bob)
        .await
        .unwrap();
    let done = wait_status(&f.store, &run.id, ExecutionStatus::Succeeded).await;
    assert_eq!(done.steps[0].approved_by.as_deref(), Some("bob"));
    // The emailed or chatted token is spent with it.
    let again = f.engine.decide(&run.id, &"0".repeat(64), true, &bob).await;
    assert!(
        matches!(again, Err(sightline_respond::RespondError::Conflict(_))),
        "{again:?}"
    );
    let audit = f
        .store
        .query_audit(&sightline_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let entry = audit
        .items
        .iter()
        .find(|a| a.action == "execution.approve")
        .unwrap();
    assert_eq!(entry.details["via"], "role");
    assert_eq!(entry.actor, "bob");
}

#[tokio::test]
async fn autonomous_candidates_are_the_playbooks_of_matching_rules() {
    use sightline_respond::decision::{CandidatePlaybooks, RuleCandidates};
    let f = fixture(config(None, &[])).await;
    let noop = json!([{"name": "a", "kind": "diagnostic", "action": {"type": "noop"}}]);
    for id in ["restart-checkout", "page-dba", "unused"] {
        f.store
            .create_template(&template(id, noop.clone()))
            .await
            .unwrap();
    }
    let rule = |id: &str, spec: Value| {
        let spec: sightline_model::TriggerRuleSpec = serde_json::from_value(spec).unwrap();
        sightline_model::TriggerRule::from_spec(
            spec.validate().unwrap(),
            id.into(),
            "t".into(),
            0,
            0,
        )
    };
    let rules = [
        rule(
            "r1",
            json!({"name": "checkout errors", "applies_to": "events",
            "conditions": {"service_name": "checkout", "event_type": "ERROR"},
            "response_template_id": "restart-checkout"}),
        ),
        rule(
            "r2",
            json!({"name": "db errors", "applies_to": "events",
            "conditions": {"service_name": "db"}, "response_template_id": "page-dba"}),
        ),
        rule(
            "r3",
            json!({"name": "critical incidents", "applies_to": "incidents",
            "conditions": {}, "response_template_id": "page-dba"}),
        ),
    ];
    for r in &rules {
        f.store.create_rule(r).await.unwrap();
    }
    let candidates = RuleCandidates::new(f.store.clone(), Clock::system());
    let ids = |templates: Vec<ResponseTemplate>| {
        let mut ids: Vec<String> = templates.into_iter().map(|t| t.id).collect();
        ids.sort();
        ids
    };
    // Only the events rule for checkout matches a checkout error (r3 is for incidents).
    let checkout = Subject::Event(Box::new(event("boom")));
    assert_eq!(
        ids(candidates.candidates(&checkout).await.unwrap()),
        ["restart-checkout"]
    );
    // A subject no rule covers is judged against every playbook.
    let mut other = event("boom");
    other.service_name = "search".into();
    assert_eq!(
        ids(candidates
            .candidates(&Subject::Event(Box::new(other)))
            .await
            .unwrap()),
        ["page-dba", "restart-checkout", "unused"]
    );
}

#[tokio::test]
async fn runs_interrupted_by_a_crash_are_marked_failed_on_restart() {
    let f = fixture(config(None, &[])).await;
    let t = template(
        "slow",
        json!([{"name": "a", "kind": "diagnostic", "action": {"type": "noop", "sleep_ms": 60000}}]),
    );
    let run = RunRequest::for_subject(t, Subject::Event(Box::new(event("x"))), Actor::system());
    let run = f.engine.start(run).await.unwrap().unwrap();
    wait_status(&f.store, &run.id, ExecutionStatus::Running).await;
    // A new engine over the same store stands for the restarted process.
    let restarted = Engine::new(f.store.clone(), None, config(None, &[]), Clock::system());
    assert_eq!(restarted.recover().await.unwrap(), 1);
    let e = f.store.get_execution(&run.id).await.unwrap().unwrap();
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.steps[0].status, StepStatus::Failed);
    assert!(e.reason.unwrap().contains("interrupted"));
}

/// Trigger-to-first-step latency over 2,000 firings of a one-noop-step playbook, measured
/// inside the engine from the moment `run_playbooks` receives a firing to the moment the
/// first step's executor is called (after the execution row is inserted and marked
/// running). Prints median and p99; asserts nothing about time.
/// `cargo test -p sightline-respond --release --test playbooks -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn trigger_to_first_step_latency() {
    let mut cfg = config(None, &[]);
    cfg.safety.per_playbook_per_hour = 0;
    cfg.safety.per_target_per_hour = 0;
    let f = fixture(cfg).await;
    f.store
        .create_template(&template(
            "noop",
            json!([{"name": "a", "kind": "diagnostic", "action": {"type": "noop"}}]),
        ))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let engine = f.engine.clone();
    let runner = tokio::spawn(async move {
        let mut rx = rx;
        run_playbooks(engine, &mut rx, std::future::pending()).await
    });
    const N: usize = 2000;
    for i in 0..N {
        tx.send(firing(&format!("f-{i}"), "noop", "x"))
            .await
            .unwrap();
        // One at a time: the figure is the engine's own latency, not queueing.
        while f.engine.latency_samples().len() <= i {
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
    }
    let mut samples = f.engine.latency_samples();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    eprintln!(
        "trigger-to-first-step over {} firings: median {:?}, p99 {:?}, max {:?}",
        samples.len(),
        pct(0.5),
        pct(0.99),
        samples[samples.len() - 1]
    );
    assert_eq!(samples.len(), N);
    drop(tx);
    runner.await.unwrap().unwrap();
}

/// A minimal SMTP relay on 127.0.0.1 that accepts one message and returns its DATA.
/// How the fake relay secures its connection.
#[derive(Clone, Copy, PartialEq)]
enum RelayTls {
    Plain,
    Starttls,
    Wrapper,
}

/// What the fake relay saw: each command with whether TLS was on when it came, and the
/// message data.
#[derive(Debug, Default)]
struct RelayTranscript {
    commands: Vec<(bool, String)>,
    data: String,
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A one-message SMTP relay on loopback, plain or with TLS (a self-signed certificate for
/// `localhost`, returned as PEM), offering AUTH PLAIN LOGIN.
async fn smtp_relay(
    mode: RelayTls,
) -> (u16, String, tokio::sync::oneshot::Receiver<RelayTranscript>) {
    use tokio::io::AsyncBufReadExt as _;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    let tls_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut tls = mode == RelayTls::Wrapper;
        let stream: Box<dyn Io> = if tls {
            Box::new(acceptor.accept(socket).await.unwrap())
        } else {
            Box::new(socket)
        };
        let mut conn = tokio::io::BufReader::new(stream);
        let mut seen = RelayTranscript::default();
        conn.get_mut()
            .write_all(b"220 relay ESMTP\r\n")
            .await
            .unwrap();
        let mut in_data = false;
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end().to_owned();
            if in_data {
                if line == "." {
                    in_data = false;
                    conn.get_mut().write_all(b"250 queued\r\n").await.unwrap();
                } else {
                    seen.data.push_str(&line);
                    seen.data.push('\n');
                }
                continue;
            }
            seen.commands.push((tls, line.clone()));
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let answer: &[u8] = match verb.as_str() {
                "EHLO" if mode == RelayTls::Starttls && !tls => {
                    b"250-relay\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"
                }
                "EHLO" => b"250-relay\r\n250 AUTH PLAIN LOGIN\r\n",
                "STARTTLS" => {
                    conn.get_mut().write_all(b"220 go ahead\r\n").await.unwrap();
                    let plain = conn.into_inner();
                    conn =
                        tokio::io::BufReader::new(Box::new(acceptor.accept(plain).await.unwrap()));
                    tls = true;
                    continue;
                }
                "AUTH" => b"235 authenticated\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    conn.get_mut().write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => b"250 ok\r\n",
            };
            conn.get_mut().write_all(answer).await.unwrap();
        }
        let _ = tx.send(seen);
    });
    (port, cert_pem, rx)
}

fn smtp(
    port: u16,
    tls: sightline_respond::executor::SmtpTls,
) -> sightline_respond::executor::SmtpConfig {
    sightline_respond::executor::SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        from: "sightline@example.org".into(),
        tls,
        ca_file: None,
        username: None,
        password: Default::default(),
    }
}

/// Runs a one-step email playbook against `smtp` and returns the finished execution.
async fn send_mail(smtp: sightline_respond::executor::SmtpConfig) -> Execution {
    let mut cfg = config(None, &[]);
    cfg.executors.smtp = Some(smtp);
    let f = fixture(cfg).await;
    let t = template(
        "mail",
        json!([{"name": "mail", "kind": "notification",
        "action": {"type": "notify", "message": "{{subject.service_name}} failed: {{subject.details}}",
                   "channel": {"type": "email", "to": ["ops@example.org"], "subject": "[{{subject.service_name}}] alert"}}}]),
    );
    let run = RunRequest::for_subject(
        t,
        Subject::Event(Box::new(event("disk full"))),
        Actor::system(),
    );
    let run = f.engine.start(run).await.unwrap().unwrap();
    for _ in 0..1000 {
        let e = f.store.get_execution(&run.id).await.unwrap().unwrap();
        if e.status.is_final() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("mail run did not finish");
}

async fn transcript(rx: tokio::sync::oneshot::Receiver<RelayTranscript>) -> RelayTranscript {
    tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn email_notifications_go_through_the_smtp_relay() {
    use sightline_respond::executor::SmtpTls;
    let (port, _, seen) = smtp_relay(RelayTls::Plain).await;
    let done = send_mail(smtp(port, SmtpTls::None)).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:#?}");
    assert!(
        done.steps[0].output.starts_with("SMTP 250"),
        "{}",
        done.steps[0].output
    );
    let data = transcript(seen).await.data;
    assert!(data.contains("Subject: [checkout] alert"), "{data}");
    assert!(data.contains("To: ops@example.org"), "{data}");
    assert!(data.contains("checkout failed: disk full"), "{data}");
}

#[tokio::test]
async fn email_goes_over_starttls_or_tls_with_credentials_only_inside_tls() {
    use sightline_respond::executor::SmtpTls;
    let dir = tempfile::tempdir().unwrap();
    for (mode, tls) in [
        (RelayTls::Starttls, SmtpTls::Starttls),
        (RelayTls::Wrapper, SmtpTls::Tls),
    ] {
        let (port, ca, seen) = smtp_relay(mode).await;
        let ca_file = dir.path().join("relay-ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let mut config = smtp(port, tls);
        // The certificate names localhost: the host must match it.
        config.host = "localhost".into();
        config.ca_file = Some(ca_file);
        config.username = Some("robot".into());
        config.password = sightline_model::Secret::new("hunter2");
        let done = send_mail(config).await;
        assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:#?}");
        let seen = transcript(seen).await;
        let auth = seen
            .commands
            .iter()
            .find(|(_, c)| c.starts_with("AUTH"))
            .unwrap_or_else(|| panic!("no AUTH: {:?}", seen.commands));
        assert!(auth.0, "credentials sent before TLS: {:?}", seen.commands);
        assert!(
            seen.commands
                .iter()
                .filter(|(_, c)| c.starts_with("MAIL FROM"))
                .all(|(tls, _)| *tls),
            "{:?}",
            seen.commands
        );
        assert!(seen.data.contains("checkout failed: disk full"));
    }

    // An untrusted certificate is refused (no ca_file: only the public roots).
    let (port, _, _seen) = smtp_relay(RelayTls::Wrapper).await;
    let mut config = smtp(port, SmtpTls::Tls);
    config.host = "localhost".into();
    let done = send_mail(config).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:#?}");
    // A relay that does not offer STARTTLS is not spoken to in clear.
    let (port, _, seen) = smtp_relay(RelayTls::Plain).await;
    let done = send_mail(smtp(port, SmtpTls::Starttls)).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:#?}");
    let seen = transcript(seen).await;
    assert!(
        !seen.commands.iter().any(|(_, c)| c.starts_with("MAIL")),
        "{:?}",
        seen.commands
    );
    // Credentials are refused over plain SMTP to a remote relay.
    let mut config = smtp(25, SmtpTls::None);
    config.host = "mail.example.org".into();
    config.username = Some("robot".into());
    let done = send_mail(config).await;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:#?}");
    assert!(
        done.steps[0].output.contains("only sent over TLS")
            || done
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("only sent over TLS"),
        "{done:#?}"
    );
}

#[tokio::test]
async fn emit_steps_publish_a_validated_event_into_system_events() {
    use sightline_log::{EmbeddedLog, EventLog, LogConfig, TopicConfig};
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(dir.path().join("log"), LogConfig::default()).unwrap());
    log.create_topic(
        sightline_model::topics::SYSTEM_EVENTS,
        TopicConfig::with_partitions(1),
    )
    .await
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("store.db"))
            .await
            .unwrap(),
    );
    let engine = Engine::new(
        store.clone(),
        Some(log.clone()),
        config(None, &[]),
        Clock::system(),
    );
    let t = template(
        "emit",
        json!([{"name": "emit", "kind": "notification",
        "action": {"type": "emit", "event": {"service_name": "{{subject.service_name}}", "event_type": "REMEDIATION",
                   "severity": "info", "details": "playbook ran for {{subject.event_id}}"}}}]),
    );
    let run = RunRequest::for_subject(t, Subject::Event(Box::new(event("x"))), Actor::system());
    let run = engine.start(run).await.unwrap().unwrap();
    let done = wait_status(&store, &run.id, ExecutionStatus::Succeeded).await;
    assert!(
        done.steps[0].output.starts_with("emitted event "),
        "{}",
        done.steps[0].output
    );
    let mut sub = log
        .subscribe("test", &[sightline_model::topics::SYSTEM_EVENTS])
        .await
        .unwrap();
    let batch = sub.next_batch(10).await.unwrap();
    assert_eq!(batch.len(), 1);
    let emitted: Event = serde_json::from_slice(&batch[0].record.value).unwrap();
    assert_eq!(emitted.service_name, "checkout");
    assert_eq!(emitted.event_type, "REMEDIATION");
    assert_eq!(emitted.details, "playbook ran for ev-1");
    assert_eq!(emitted.correlation_id, run.id);

    // An emitted document that is not a valid event fails the step with the field named.
    let t = template(
        "bad",
        json!([{"name": "emit", "kind": "notification",
        "action": {"type": "emit", "event": {"event_type": "X"}}}]),
    );
    let run = RunRequest::for_subject(t, Subject::Event(Box::new(event("x"))), Actor::system());
    let run = engine.start(run).await.unwrap().unwrap();
    let done = wait_status(&store, &run.id, ExecutionStatus::Failed).await;
    assert!(
        done.steps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("service_name"),
        "{:?}",
        done.steps[0]
    );
}
