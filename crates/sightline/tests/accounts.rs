//! Credentials without a browser: `sightline user …` and `sightline key …` work offline on
//! the data directory, and a node started on it afterwards (`sightline run`) accepts them;
//! `sightline simulate` sends with `SIGHTLINE_API_KEY`.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sightline(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sightline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SIGHTLINE_") {
            command.env_remove(key);
        }
    }
    command.args(args).arg("--data-dir").arg(dir);
    command
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Kills the node when the test ends, passed or failed.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn offline_users_and_keys_work_against_a_node_started_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut add = sightline(
        dir.path(),
        &["user", "add", "ops", "--role", "admin", "--password-stdin"],
    );
    let mut child = add
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a long enough password\n")
        .expect("write");
    let out = child.wait_with_output().expect("user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = run_ok(&mut sightline(dir.path(), &["user", "add", "viewer1"]));
    assert!(generated.contains("password: "), "{generated}");
    let users = run_ok(&mut sightline(dir.path(), &["user", "list"]));
    assert!(
        users.contains("ops") && users.contains("admin") && users.contains("viewer1"),
        "{users}"
    );
    run_ok(&mut sightline(dir.path(), &["user", "disable", "viewer1"]));
    assert!(run_ok(&mut sightline(dir.path(), &["user", "list"])).contains("disabled"));

    let key = run_ok(&mut sightline(
        dir.path(),
        &["key", "create", "--name", "ci", "--quiet"],
    ));
    let key = key.trim().to_owned();
    assert!(key.starts_with("slk_"), "{key}");
    let refused = sightline(dir.path(), &["key", "create", "--scopes", "root"])
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("scopes"));

    // Start a node on the same data directory.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let _node = Child(
        sightline(dir.path(), &["run", "--http-addr", &addr])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "node did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Without the key the node refuses; simulate with SIGHTLINE_API_KEY delivers.
    let target = format!("http://{addr}");
    let simulate = |key: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sightline"));
        command
            .args(["simulate", "--target", &target, "--count", "200", "--json"])
            .env_remove("SIGHTLINE_API_KEY");
        if let Some(key) = key {
            command.env("SIGHTLINE_API_KEY", key);
        }
        let out = command.output().expect("simulate");
        let report: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("JSON report");
        (out.status.code(), report)
    };
    let (code, report) = simulate(None);
    assert_eq!(
        report["acknowledged"], 0,
        "accepted without a key: {report}"
    );
    assert_ne!(code, Some(0), "{report}");
    let (code, report) = simulate(Some(&key));
    assert_eq!(
        (code, report["acknowledged"].as_u64()),
        (Some(0), Some(200)),
        "{report}"
    );

    // Revoke offline: the running node stops accepting the key within its cache time.
    let id = key
        .trim_start_matches("slk_")
        .split('_')
        .next()
        .expect("id")
        .to_owned();
    run_ok(&mut sightline(dir.path(), &["key", "revoke", &id]));
    assert!(run_ok(&mut sightline(dir.path(), &["key", "list"])).contains("revoked"));
}
