//! A sightline node as a child process of a benchmark: started with `sightline run` on a
//! data directory and a fixed loopback port, killed with SIGKILL, restarted on both.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;

/// A node under test, restarted on the same directory and port after every kill.
pub(super) struct NodeProcess {
    pub(super) dir: PathBuf,
    addr: String,
    role: &'static str,
    env: Vec<(&'static str, String)>,
    child: Option<tokio::process::Child>,
}

impl NodeProcess {
    pub(super) async fn new(
        dir: PathBuf,
        role: &'static str,
        env: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut node = Self {
            dir,
            addr: format!("127.0.0.1:{}", free_port()?),
            role,
            env,
            child: None,
        };
        node.start().await?;
        Ok(node)
    }

    pub(super) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(super) async fn start(&mut self) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("locating the sightline binary")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .context("opening node.log")?;
        let mut command = tokio::process::Command::new(exe);
        // The harness decides the configuration: nothing from the caller's environment.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SIGHTLINE_") {
                command.env_remove(key);
            }
        }
        let child = command
            .args(["run", "--role", self.role, "--data-dir"])
            .arg(&self.dir)
            .args(["--http-addr", &self.addr])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            // Loopback nodes under test: the harness posts without credentials.
            .env("SIGHTLINE_AUTH__ENABLED", "false")
            // Quiet by default; BENCH_NODE_LOG=debug to see inside the nodes.
            .env(
                "RUST_LOG",
                std::env::var("BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the node")?;
        self.child = Some(child);
        Ok(())
    }

    pub(super) async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill().context("SIGKILL")?;
            child.wait().await?;
        }
        Ok(())
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
