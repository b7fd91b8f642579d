//! Conformance cases for [`ResponseStore`]: templates round-trip and report what an update
//! replaced, one execution per firing, single-use approvals (also under concurrency), and
//! the decision log's filters and feedback.

use std::sync::Arc;

use serde_json::json;
use sightline_model::{
    Approval, Decision, DecisionKind, Execution, ExecutionStatus, ResponseTemplate, StepRun,
};
use sightline_store::{DecisionQuery, ExecutionQuery, Store, StoreError};

use super::{BASE_MS, Backend};

fn template(id: &str, name: &str) -> ResponseTemplate {
    let mut t: ResponseTemplate = serde_json::from_value(json!({
        "id": id, "name": name, "description": "ünï ✓",
        "steps": [{"name": "diag", "kind": "diagnostic",
                   "action": {"type": "command", "program": "/bin/echo", "args": ["{{subject.service_name}}"]},
                   "rollback": [{"type": "noop"}]}]
    }))
    .unwrap();
    t.created_at = BASE_MS;
    t.updated_at = BASE_MS;
    t.created_by = "alice".into();
    t
}

fn execution(
    id: &str,
    firing: Option<&str>,
    rule: &str,
    status: ExecutionStatus,
    at: i64,
) -> Execution {
    Execution {
        id: id.into(),
        rule_id: rule.into(),
        firing_id: firing.map(str::to_owned),
        template_id: "t1".into(),
        template_name: "restart".into(),
        max_execution_time: 600,
        subject: json!({"kind": "event", "value": {"service_name": "api"}}),
        status,
        dry_run: false,
        rollback_on_failure: true,
        steps: vec![StepRun::pending("diag")],
        started_by: "rule".into(),
        reason: None,
        created_at: at,
        updated_at: at,
    }
}

pub async fn response_templates_round_trip_and_updates_return_the_replaced_version(b: &Backend) {
    let s = &b.store;
    let t = template("t1", "restart");
    s.create_template(&t).await.unwrap();
    assert!(matches!(
        s.create_template(&t).await,
        Err(StoreError::Conflict(_))
    ));
    s.create_template(&template("t0", "zzz")).await.unwrap();
    assert_eq!(s.get_template("t1").await.unwrap(), Some(t.clone()));
    let names: Vec<_> = s
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["restart", "zzz"]);

    let mut changed = t.clone();
    changed.description = "changed".into();
    changed.updated_at = BASE_MS + 5;
    assert_eq!(s.update_template(&changed).await.unwrap(), t);
    assert_eq!(s.get_template("t1").await.unwrap(), Some(changed.clone()));
    assert!(matches!(
        s.update_template(&template("nope", "x")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.delete_template("t1").await.unwrap(), Some(changed));
    assert_eq!(s.delete_template("t1").await.unwrap(), None);
    assert_eq!(s.get_template("t1").await.unwrap(), None);
}

pub async fn executions_run_once_per_firing_and_filter_newest_first(b: &Backend) {
    let s = &b.store;
    let e1 = execution("e1", Some("f1"), "r1", ExecutionStatus::Running, BASE_MS);
    assert!(s.insert_execution(&e1).await.unwrap());
    // The same firing again (a replay), under a new execution id: refused.
    let replay = execution(
        "e1b",
        Some("f1"),
        "r1",
        ExecutionStatus::Pending,
        BASE_MS + 1,
    );
    assert!(!s.insert_execution(&replay).await.unwrap());
    assert!(!s.insert_execution(&e1).await.unwrap());
    // Executions without a firing (manual, dry runs) never collide with each other.
    for (i, status) in [ExecutionStatus::DryRun, ExecutionStatus::Succeeded]
        .into_iter()
        .enumerate()
    {
        let e = execution(
            &format!("m{i}"),
            None,
            "r2",
            status,
            BASE_MS + 10 + i as i64,
        );
        assert!(s.insert_execution(&e).await.unwrap());
    }
    assert_eq!(s.get_execution("e1b").await.unwrap(), None);

    let mut done = e1.clone();
    done.status = ExecutionStatus::Succeeded;
    done.steps[0].output = "api\n".into();
    done.updated_at = BASE_MS + 100;
    s.save_execution(&done).await.unwrap();
    assert_eq!(s.get_execution("e1").await.unwrap(), Some(done.clone()));
    assert!(matches!(
        s.save_execution(&execution("ghost", None, "r", ExecutionStatus::Failed, 0))
            .await,
        Err(StoreError::NotFound(_))
    ));

    let ids = |v: Vec<Execution>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let all = s
        .query_executions(&ExecutionQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(all), ["m1", "m0", "e1"]);
    let r2 = s
        .query_executions(&ExecutionQuery {
            rule_id: Some("r2".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(r2), ["m1", "m0"]);
    let succeeded = s
        .query_executions(&ExecutionQuery {
            statuses: vec![ExecutionStatus::Succeeded],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(succeeded), ["m1", "e1"]);
    let one = s
        .query_executions(&ExecutionQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(one), ["m1"]);
}

pub async fn approvals_are_single_use_even_under_concurrency(b: &Backend) {
    let s: Arc<dyn Store> = b.store.clone();
    let approval = Approval {
        id: "a1".into(),
        execution_id: "e1".into(),
        step_index: 2,
        token_hash: "ab".repeat(32),
        created_at: BASE_MS,
        expires_at: BASE_MS + 60_000,
        used_at: None,
        decision: None,
        decided_by: None,
    };
    s.insert_approval(&approval).await.unwrap();
    assert_eq!(s.open_approval("e1").await.unwrap(), Some(approval.clone()));
    assert_eq!(s.open_approval("e2").await.unwrap(), None);

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.consume_approval("a1", "approved", &format!("user{i}"), BASE_MS + 5)
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one use of a single-use approval succeeds");
    assert_eq!(s.open_approval("e1").await.unwrap(), None);
    assert!(
        !s.consume_approval("a1", "rejected", "late", BASE_MS + 6)
            .await
            .unwrap()
    );
}

pub async fn decisions_filter_by_subject_and_time_and_keep_feedback(b: &Backend) {
    let s = &b.store;
    for i in 0..4i64 {
        let d = Decision {
            id: format!("d{i}"),
            event_id: Some(format!("ev{}", i % 2)),
            incident_id: None,
            decision: DecisionKind::Escalate,
            confidence: 0.25 * i as f64,
            reasoning: vec!["because".into()],
            recommended_actions: vec![],
            context: json!({"business_hours": true}),
            requested_by: "bob".into(),
            feedback: None,
            created_at: BASE_MS + i * 1000,
        };
        s.insert_decision(&d).await.unwrap();
        assert_eq!(s.get_decision(&d.id).await.unwrap(), Some(d));
    }
    let ids = |v: Vec<Decision>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let ev0 = s
        .query_decisions(&DecisionQuery {
            event_id: Some("ev0".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(ev0), ["d2", "d0"]);
    let recent = s
        .query_decisions(&DecisionQuery {
            since: Some(BASE_MS + 1000),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(recent), ["d3", "d2", "d1"]);
    let feedback = json!({"outcome": "resolved", "helpful": true});
    let d = s.set_decision_feedback("d1", &feedback).await.unwrap();
    assert_eq!(d.feedback, Some(feedback.clone()));
    assert_eq!(
        s.get_decision("d1").await.unwrap().unwrap().feedback,
        Some(feedback)
    );
    assert!(matches!(
        s.set_decision_feedback("nope", &json!({})).await,
        Err(StoreError::NotFound(_))
    ));
}
