//! The `command` executor: an allow-listed executable run with an argv, never through a
//! shell, in its own process group so a timeout kills it together with every child it
//! spawned.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{StepFailure, truncate_utf8};

/// Which executables playbooks may run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandConfig {
    /// Absolute paths of the executables playbooks may run (exact match; empty: none).
    pub allowed: Vec<PathBuf>,
    /// `PATH` given to the child (its environment is otherwise empty, so secrets in
    /// sightline's own environment never reach it).
    pub path_env: Option<String>,
}

/// The `PATH` a command runs with unless configured.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Bytes of stdout and of stderr kept.
pub const MAX_STREAM_BYTES: usize = 32 * 1024;

/// Reads a pipe to its end, keeping the first [`MAX_STREAM_BYTES`] (the rest is read and
/// dropped, so a chatty child never blocks on a full pipe).
async fn capture(pipe: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_STREAM_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

fn describe(status: &str, out: &(Vec<u8>, bool), err: &(Vec<u8>, bool)) -> String {
    let text = |(bytes, truncated): &(Vec<u8>, bool)| {
        let mut s = String::from_utf8_lossy(bytes).into_owned();
        if *truncated {
            s.push_str("\n[truncated]");
        }
        s
    };
    let output = format!(
        "{status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        text(out),
        text(err)
    );
    truncate_utf8(output, 2 * MAX_STREAM_BYTES + 256)
}

/// Kills every process of the group led by `pid` (a no-op when none is left).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // ESRCH (the group is already gone) is the expected case after a clean exit.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The captured pipe, waiting briefly: a process that left the group (`setsid`) could
/// hold the pipe open forever, and the step must still end.
async fn drain(task: tokio::task::JoinHandle<(Vec<u8>, bool)>) -> (Vec<u8>, bool) {
    let abort = task.abort_handle();
    match tokio::time::timeout(Duration::from_secs(1), task).await {
        Ok(result) => result.unwrap_or_default(),
        Err(_) => {
            abort.abort();
            (
                b"[output pipe held open by an escaped process]".to_vec(),
                true,
            )
        }
    }
}

/// Runs `argv` (program first) if the program is allow-listed; succeeds on exit status 0.
pub async fn run(
    config: &CommandConfig,
    argv: &[String],
    limit: Duration,
) -> Result<String, StepFailure> {
    let Some(program) = argv.first() else {
        return Err(StepFailure::refused("a command needs a program"));
    };
    if !config
        .allowed
        .iter()
        .any(|p| p.as_os_str() == program.as_str())
    {
        return Err(StepFailure::refused(format!(
            "'{program}' is not an allow-listed executable"
        )));
    }
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv[1..])
        .env_clear()
        .env("PATH", config.path_env.as_deref().unwrap_or(DEFAULT_PATH))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group (pgid = its pid): killpg reaches its children too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        StepFailure::failed(format!("cannot start '{program}': {e}"), String::new())
    })?;
    let pid = child.id();
    let stdout = tokio::spawn(capture(child.stdout.take()));
    let stderr = tokio::spawn(capture(child.stderr.take()));
    let waited = tokio::time::timeout(limit, child.wait()).await;
    // Whatever happened, nothing of this run outlives it: a timed-out leader and any
    // children left behind by a leader that exited are killed with the whole group.
    kill_group(pid);
    let status = match waited {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(e)) => Err(format!("waiting for '{program}': {e}")),
        Err(_) => {
            let _ = child.wait().await;
            Err(format!(
                "timed out after {} ms; its process group was killed",
                limit.as_millis()
            ))
        }
    };
    let out = drain(stdout).await;
    let err = drain(stderr).await;
    match status {
        Ok(status) if status.success() => Ok(describe("exit status 0", &out, &err)),
        Ok(status) => Err(StepFailure::failed(
            format!("'{program}' exited with {status}"),
            describe(&status.to_string(), &out, &err),
        )),
        Err(reason) => Err(StepFailure::failed(
            reason.clone(),
            describe(&reason, &out, &err),
        )),
    }
}
