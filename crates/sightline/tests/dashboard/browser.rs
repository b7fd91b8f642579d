//! The parts every dashboard test needs: a real node (`sightline run` on a fresh data
//! directory, with one user per role), a real headless Chromium driven through ChromeDriver
//! (WebDriver), and screenshots kept as test artifacts under
//! `target/tmp/dashboard-screenshots/`.
//!
//! ChromeDriver and Chromium come from Debian's `chromium-driver` and `chromium` packages
//! (`scripts/test.sh` installs them); `SIGHTLINE_TEST_CHROMEDRIVER` and
//! `SIGHTLINE_TEST_CHROMIUM` point elsewhere.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Every test user's password.
pub const PASSWORD: &str = "a long enough password";

/// How long any one expectation may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A node with embedded defaults, killed when dropped.
pub struct Node {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Child,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Node {
    /// Starts a node with users `admin`, `approver`, `engineer` and `viewer` (role = name),
    /// all with [`PASSWORD`]; `config` is extra TOML for its configuration file.
    pub async fn start(config: &str) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        for role in ["admin", "approver", "engineer", "viewer"] {
            let mut add = sightline(
                dir.path(),
                &["user", "add", role, "--role", role, "--password-stdin"],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn user add");
            add.stdin
                .take()
                .expect("stdin")
                .write_all(format!("{PASSWORD}\n").as_bytes())
                .expect("password");
            let out = add.wait_with_output().expect("user add");
            assert!(
                out.status.success(),
                "user add {role}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let config_path = dir.path().join("sightline.toml");
        std::fs::write(&config_path, config).expect("config");
        let addr = free_addr();
        let log = std::fs::File::create(dir.path().join("node.log")).expect("log file");
        let config_arg = config_path.to_string_lossy();
        let child = sightline(
            dir.path(),
            &["run", "--http-addr", &addr, "--config", &config_arg],
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start node");
        let node = Node {
            base: format!("http://{addr}"),
            child,
            _dir: dir,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = node.http.get(node.url("/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node did not become ready: {}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        node
    }

    /// `path` on this node.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the node wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("node.log")).unwrap_or_default()
    }

    /// An access token for `user`.
    pub async fn token(&self, user: &str) -> String {
        let session: Value = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("session");
        session["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {session}"))
            .to_owned()
    }

    /// Calls the API as `user` and returns the status and JSON answer (`Null` if none).
    pub async fn call(
        &self,
        user: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.token(user).await);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session; ChromeDriver is killed when dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    test: String,
    shots: usize,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium for the test named `test` (it names the
    /// screenshots).
    pub async fn start(test: &str) -> Browser {
        let driver_bin =
            std::env::var("SIGHTLINE_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium =
            std::env::var("SIGHTLINE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let addr = free_addr();
        let port = addr.rsplit(':').next().expect("port").to_owned();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{driver_bin} did not start ({e}): run scripts/test.sh, which installs it")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,900"],
            }),
        );
        // The WebDriver client links rustls without choosing a crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(capabilities)
            .connect(&format!("http://{addr}"))
            .await
            .expect("WebDriver session");
        Browser {
            client,
            driver,
            test: test.to_owned(),
            shots: 0,
        }
    }

    /// Opens the dashboard and logs in as `user` (one of the node's users); returns once
    /// the overview is showing.
    pub async fn login(&self, node: &Node, user: &str) {
        self.client.goto(&node.url("/")).await.expect("open");
        self.element("#username")
            .await
            .send_keys(user)
            .await
            .expect("type");
        self.element("#password")
            .await
            .send_keys(PASSWORD)
            .await
            .expect("type");
        self.element("#login-submit")
            .await
            .click()
            .await
            .expect("submit");
        // The login page navigates away once the session is stored: wait for both, so the
        // caller's next navigation is not overtaken by it.
        self.until("the navigation after login", || async {
            let url = self.client.current_url().await.ok()?;
            let left = !url.fragment().unwrap_or_default().starts_with("/login");
            (left && self.visible("#nav").await).then_some(())
        })
        .await;
    }

    /// Goes to a dashboard route such as `#/incidents`.
    pub async fn open(&self, node: &Node, hash: &str) {
        self.client
            .goto(&node.url(&format!("/{hash}")))
            .await
            .expect("navigate");
    }

    /// The first element matching `css`, waiting for it to exist.
    pub async fn element(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Waits until the header's live-stream dot says the WebSocket is connected.
    pub async fn until_live(&self) {
        self.until("the live stream to connect", || async {
            let class = self
                .element("#live-state")
                .await
                .attr("class")
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            class.contains("on").then_some(())
        })
        .await;
    }

    /// Whether an element matching `css` exists and is displayed.
    pub async fn visible(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// The text of the first element matching `css` ("" if there is none yet).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until `text` appears in the element matching `css`; returns its whole text.
    pub async fn until_text(&self, css: &str, text: &str) -> String {
        self.until(&format!("{text:?} in {css}"), || async {
            let got = self.text(css).await;
            got.contains(text).then_some(got)
        })
        .await
    }

    /// Polls `probe` until it returns `Some`, failing the test (with a screenshot) after
    /// [`PATIENCE`]; `what` says what was awaited.
    pub async fn until<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if Instant::now() > deadline {
                let shot = self.save_screenshot("timeout").await;
                panic!(
                    "waited {PATIENCE:?} for {what}; screenshot: {}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the page as `<test>-<n>-<label>.png` and returns its path.
    pub async fn screenshot(&mut self, label: &str) -> PathBuf {
        self.shots += 1;
        let label = format!("{:02}-{label}", self.shots);
        self.save_screenshot(&label).await
    }

    async fn save_screenshot(&self, label: &str) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{}-{label}.png", self.test));
        match self.client.screenshot().await {
            Ok(png) => std::fs::write(&path, png).expect("write screenshot"),
            Err(e) => eprintln!("screenshot {label} failed: {e}"),
        }
        path
    }

    /// Ends the browser session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots are kept: `target/tmp/dashboard-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

/// `sightline <args> --data-dir <dir>`, without the caller's `SIGHTLINE_*` settings.
fn sightline(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sightline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SIGHTLINE_") {
            command.env_remove(key);
        }
    }
    command.args(args).arg("--data-dir").arg(dir);
    command
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}
