//! Conformance cases for [`RuleStore`]: exact round trips of every field (JSON documents
//! included), unique ids, listing (all / active only) in creation order, updates that
//! return the replaced version, deletes that return the removed one.

use serde_json::json;
use sightline_model::{AppliesTo, Severity, Throttle, TriggerRule};
use sightline_store::StoreError;

use super::{BASE_MS, Backend};

fn rule(i: usize, active: bool) -> TriggerRule {
    TriggerRule {
        id: format!("rule-{i:03}"),
        name: format!("rule {i} ünï"),
        description: "fires on CPU".into(),
        applies_to: [
            AppliesTo::Events,
            AppliesTo::Anomalies,
            AppliesTo::Incidents,
        ][i % 3],
        // Key order and number formatting must come back as written.
        conditions: json!({"z": 1, "metadata.cpu_usage": {"$gt": 90.5}, "a": [1, "x", null]}),
        severity_threshold: i.is_multiple_of(2).then_some(Severity::High),
        time_window_minutes: i.is_multiple_of(2).then_some(10),
        threshold_count: if i.is_multiple_of(2) { 5 } else { 1 },
        group_by: vec!["service_name".into(), "host".into()],
        max_triggers_per_hour: i.is_multiple_of(3).then_some(12),
        throttle: match i % 3 {
            0 => Some(Throttle::OnceWithin { minutes: 30 }),
            1 => Some(Throttle::OnceAfter { minutes: 5 }),
            _ => None,
        },
        response_template_id: (!i.is_multiple_of(2)).then(|| format!("tpl-{i}")),
        active,
        created_by: "alice".into(),
        created_at: BASE_MS + i as i64,
        updated_at: BASE_MS + i as i64,
    }
}

pub async fn trigger_rules_round_trip_list_update_and_delete(b: &Backend) {
    let store = &b.store;
    let rules: Vec<TriggerRule> = (0..6).map(|i| rule(i, i != 4)).collect();
    for r in rules.iter().rev() {
        store.create_rule(r).await.unwrap();
    }
    assert!(matches!(
        store.create_rule(&rules[0]).await,
        Err(StoreError::Conflict(_))
    ));
    for r in &rules {
        assert_eq!(store.get_rule(&r.id).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(store.get_rule("nope").await.unwrap(), None);
    assert_eq!(store.list_rules(false).await.unwrap(), rules);
    let active: Vec<TriggerRule> = rules.iter().filter(|r| r.active).cloned().collect();
    assert_eq!(store.list_rules(true).await.unwrap(), active);

    // An update replaces everything but id/created_by/created_at and returns the old version.
    let mut changed = rule(7, false);
    changed.id = rules[1].id.clone();
    changed.created_by = "mallory".into();
    changed.created_at = 0;
    changed.updated_at = BASE_MS + 1000;
    let before = store.update_rule(&changed).await.unwrap();
    assert_eq!(before, rules[1]);
    let after = store.get_rule(&changed.id).await.unwrap().unwrap();
    assert_eq!(after.created_by, "alice");
    assert_eq!(after.created_at, rules[1].created_at);
    let mut expected = changed.clone();
    expected.created_by = "alice".into();
    expected.created_at = rules[1].created_at;
    assert_eq!(after, expected);
    assert!(
        !store
            .list_rules(true)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == changed.id)
    );
    let mut ghost = rule(9, true);
    ghost.id = "ghost".into();
    assert!(matches!(
        store.update_rule(&ghost).await,
        Err(StoreError::NotFound(_))
    ));

    assert_eq!(store.delete_rule(&rules[2].id).await.unwrap(), rules[2]);
    assert!(matches!(
        store.delete_rule(&rules[2].id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_rules(false).await.unwrap().len(), 5);
}
