//! The query supervisor of a processing node: keeps one running task per continuous query
//! defined in the store, starting new ones and stopping dropped ones as the definitions
//! change (woken by this node's API at once, and polling for other nodes' changes).
//!
//! Each query runs supervised, like every log consumer: one that fails is restarted after
//! a pause and resumes from its checkpoint. A dropped query's task is stopped and its
//! checkpoint forgotten, so a table re-created under the same name (a new definition id)
//! starts from the beginning of its source.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sightline_log::EventLog;
use sightline_store::Store;
use sightline_stream::CheckpointStore;
use sightline_stream::sql::runner::{self, QueryRunnerConfig};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How often definitions are re-read when nothing wakes the supervisor.
const POLL: Duration = Duration::from_secs(2);

struct Running {
    name: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs until `stopped` turns true, then stops every query (each saves a final checkpoint).
pub(super) async fn supervise(
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    checkpoints: Arc<dyn CheckpointStore>,
    config: QueryRunnerConfig,
    changed: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut running: HashMap<String, Running> = HashMap::new();
    // Definitions that do not compile, by id: logged once, not retried every poll.
    let mut broken: HashMap<String, String> = HashMap::new();
    loop {
        match store.list_statements().await {
            Ok(statements) => {
                let ids: Vec<&str> = statements.iter().map(|s| s.id.as_str()).collect();
                let gone: Vec<String> = running
                    .keys()
                    .filter(|id| !ids.contains(&id.as_str()))
                    .cloned()
                    .collect();
                for id in gone {
                    if let Some(r) = running.remove(&id) {
                        let _ = r.stop.send(true);
                        let _ = r.task.await;
                        if let Err(error) = runner::forget(checkpoints.as_ref(), &id).await {
                            tracing::warn!(%error, query = %r.name, "cannot delete the checkpoint of a dropped query");
                        }
                        tracing::info!(query = %r.name, "continuous query dropped");
                    }
                }
                for s in &statements {
                    if running.contains_key(&s.id) || broken.contains_key(&s.id) {
                        continue;
                    }
                    match runner::compile(&statements, &s.id) {
                        Ok(Some(_)) => {
                            let (stop, rx) = watch::channel(false);
                            let task = tokio::spawn(run_one(
                                log.clone(),
                                store.clone(),
                                checkpoints.clone(),
                                config.clone(),
                                statements.clone(),
                                s.id.clone(),
                                s.name.clone(),
                                rx,
                            ));
                            running.insert(
                                s.id.clone(),
                                Running {
                                    name: s.name.clone(),
                                    stop,
                                    task,
                                },
                            );
                        }
                        // A source stream: nothing to run.
                        Ok(None) => {}
                        Err(error) => {
                            tracing::error!(%error, query = %s.name, "stored continuous query does not compile; not running it");
                            broken.insert(s.id.clone(), error.to_string());
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read continuous-query definitions"),
        }
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
    for (_, r) in running.drain() {
        let _ = r.stop.send(true);
        let _ = r.task.await;
    }
}

/// One query, restarted after a pause whenever it fails.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    checkpoints: Arc<dyn CheckpointStore>,
    config: QueryRunnerConfig,
    statements: Vec<sightline_store::StreamStatement>,
    id: String,
    name: String,
    stopped: watch::Receiver<bool>,
) {
    super::supervised(
        format!("continuous query '{name}'"),
        stopped,
        |until_stopped| {
            let (log, store, checkpoints, config) = (
                log.clone(),
                store.clone(),
                checkpoints.clone(),
                config.clone(),
            );
            let (statements, id) = (statements.clone(), id.clone());
            async move {
                let Some(query) = runner::compile(&statements, &id)? else {
                    return Ok(());
                };
                runner::run_query(log, store, id, query, checkpoints, config, until_stopped).await
            }
        },
    )
    .await;
}
