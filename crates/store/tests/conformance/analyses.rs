//! Conformance cases for [`AnalysisStore`]: analyses round-trip exactly and upsert by id,
//! the newest analysis of an incident wins, feedback needs an existing analysis and is
//! found by incident and by the root cause it judged, and similar past incidents are found
//! by service or fingerprint, never the incident itself or a later one. Per-event insights
//! round-trip exactly, upsert by event id and filter by service, fingerprint and time.

use std::collections::BTreeMap;

use sightline_model::{
    ActionRisk, Analysis, AnalysisStatus, AnalystKind, EventInsight, EvidenceKind, EvidenceRef,
    Feedback, FeedbackVerdict, Incident, IncidentStatus, Severity, SuggestedAction,
};
use sightline_store::{InsightQuery, SimilarIncidents, StoreError};

use super::{BASE_MS, Backend};

fn analysis(incident: &str, version: i64, root: Option<&str>) -> Analysis {
    Analysis {
        id: Analysis::id_for(incident, version),
        incident_id: incident.into(),
        root_cause: format!("connection pool of {root:?} exhausted \"quoted\" ✓"),
        root_cause_service: root.map(str::to_owned),
        confidence: 0.731_234_567_89,
        impacted_services: vec!["db".into(), "api".into()],
        suggested_actions: vec![SuggestedAction {
            title: "Roll back db to 2.3.1".into(),
            description: "The errors started right after the deployment.".into(),
            risk: ActionRisk::Medium,
            command_hint: Some("kubectl rollout undo deploy/db".into()),
        }],
        technical_summary: "db latency rose first, api followed 10 s later".into(),
        executive_summary: "Checkout was slow for 12 minutes.".into(),
        evidence: vec![
            EvidenceRef {
                kind: EvidenceKind::Anomaly,
                id: "an-0000000000000001".into(),
            },
            EvidenceRef {
                kind: EvidenceKind::Deployment,
                id: "evt-deploy-1".into(),
            },
        ],
        flags: vec!["cited unknown id 'evt-404'".into()],
        analyst: AnalystKind::Builtin,
        model: "builtin-v1".into(),
        prompt_tokens: 0,
        completion_tokens: 0,
        latency_ms: 3,
        status: AnalysisStatus::Completed,
        error: None,
        created_at: BASE_MS + version,
    }
}

fn incident(id: &str, service: &str, affected: &[&str], fingerprint: &str, at: i64) -> Incident {
    Incident {
        id: id.into(),
        title: format!("{service} is slow"),
        description: String::new(),
        severity: Severity::High,
        score: 0.5,
        status: IncidentStatus::Open,
        service_name: service.into(),
        affected_services: affected.iter().map(|s| s.to_string()).collect(),
        detected_at: at,
        updated_at: at,
        acknowledged_at: None,
        resolved_at: None,
        correlation_id: String::new(),
        fingerprint: fingerprint.into(),
        labels: BTreeMap::new(),
        event_ids: vec![],
        anomaly_ids: vec![],
        occurrences: 1,
        assignee: None,
        flapping: false,
        timeline: vec![],
    }
}

pub async fn analyses_upsert_by_id_and_round_trip_exactly(b: &Backend) {
    let s = &b.store;
    let first = analysis("inc-1", 10, Some("db"));
    s.upsert_analysis(&first).await.unwrap();
    assert_eq!(
        s.get_analysis(&first.id).await.unwrap(),
        Some(first.clone())
    );
    // Same id again (a redelivered incident version): replaced, not duplicated.
    let mut again = first.clone();
    again.confidence = 0.25;
    again.analyst = AnalystKind::Llm;
    again.model = "gpt-x".into();
    again.prompt_tokens = 1234;
    again.completion_tokens = 56;
    again.root_cause_service = None;
    again.status = AnalysisStatus::Failed;
    again.error = Some("schema violation: missing root_cause".into());
    s.upsert_analysis(&again).await.unwrap();
    assert_eq!(
        s.list_analyses("inc-1", 10).await.unwrap(),
        vec![again.clone()]
    );
    // A later version is a second analysis; the latest is the newest.
    let later = analysis("inc-1", 20, Some("api"));
    s.upsert_analysis(&later).await.unwrap();
    assert_eq!(
        s.latest_analysis("inc-1").await.unwrap(),
        Some(later.clone())
    );
    assert_eq!(
        s.list_analyses("inc-1", 10).await.unwrap(),
        vec![later.clone(), again]
    );
    assert_eq!(s.list_analyses("inc-1", 1).await.unwrap(), vec![later]);
    assert_eq!(s.latest_analysis("inc-unknown").await.unwrap(), None);
    assert_eq!(s.get_analysis("ana-unknown").await.unwrap(), None);
    // NaN confidence is refused the same way on both backends.
    let mut nan = analysis("inc-2", 1, None);
    nan.confidence = f64::NAN;
    assert!(matches!(
        s.upsert_analysis(&nan).await,
        Err(StoreError::InvalidData(_))
    ));
}

pub async fn feedback_needs_an_analysis_and_is_found_by_incident_and_root_cause(b: &Backend) {
    let s = &b.store;
    let db = analysis("inc-1", 1, Some("db"));
    let cache = analysis("inc-2", 1, Some("cache"));
    let none = analysis("inc-3", 1, None);
    for a in [&db, &cache, &none] {
        s.upsert_analysis(a).await.unwrap();
    }
    let fb = |a: &Analysis, verdict, at| Feedback {
        analysis_id: a.id.clone(),
        incident_id: a.incident_id.clone(),
        verdict,
        notes: "the real cause was the cache ✓".into(),
        author: "alice".into(),
        created_at: BASE_MS + at,
    };
    s.add_feedback(&fb(&db, FeedbackVerdict::Helpful, 1))
        .await
        .unwrap();
    s.add_feedback(&fb(&db, FeedbackVerdict::NotHelpful, 2))
        .await
        .unwrap();
    s.add_feedback(&fb(&cache, FeedbackVerdict::Incorrect, 3))
        .await
        .unwrap();
    s.add_feedback(&fb(&none, FeedbackVerdict::Helpful, 4))
        .await
        .unwrap();
    // Unknown analysis, or an analysis of another incident: not found, nothing stored.
    let mut unknown = fb(&db, FeedbackVerdict::Helpful, 5);
    unknown.analysis_id = "ana-nope".into();
    assert!(matches!(
        s.add_feedback(&unknown).await,
        Err(StoreError::NotFound(_))
    ));
    let mut wrong = fb(&db, FeedbackVerdict::Helpful, 6);
    wrong.incident_id = "inc-2".into();
    assert!(matches!(
        s.add_feedback(&wrong).await,
        Err(StoreError::NotFound(_))
    ));

    let by_incident = s
        .verdicts_for_incidents(&["inc-1".into(), "inc-2".into(), "inc-9".into()])
        .await
        .unwrap();
    let got: Vec<_> = by_incident
        .iter()
        .map(|v| {
            (
                v.incident_id.as_str(),
                v.root_cause_service.as_deref(),
                v.verdict,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("inc-2", Some("cache"), FeedbackVerdict::Incorrect),
            ("inc-1", Some("db"), FeedbackVerdict::NotHelpful),
            ("inc-1", Some("db"), FeedbackVerdict::Helpful),
        ]
    );
    assert!(s.verdicts_for_incidents(&[]).await.unwrap().is_empty());

    let by_service = s
        .verdicts_for_services(&["db".into(), "unknown".into()], 10)
        .await
        .unwrap();
    assert_eq!(by_service.len(), 2);
    assert!(by_service.iter().all(|v| v.analysis_id == db.id));
    assert_eq!(by_service[0].created_at, BASE_MS + 2, "newest first");
    assert_eq!(
        s.verdicts_for_services(&["db".into()], 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(s.verdicts_for_services(&[], 10).await.unwrap().is_empty());
}

pub async fn similar_incidents_share_a_service_or_fingerprint_and_came_before(b: &Backend) {
    let s = &b.store;
    let incidents = [
        incident("inc-a", "db", &["db", "api"], "fp-1", BASE_MS),
        incident("inc-b", "cache", &["cache"], "fp-2", BASE_MS + 1_000),
        incident("inc-c", "search", &["search"], "fp-1", BASE_MS + 2_000),
        incident("inc-d", "api", &["api"], "fp-3", BASE_MS + 3_000),
        // The incident being analysed, and one detected after it.
        incident("inc-now", "db", &["db", "api"], "fp-1", BASE_MS + 4_000),
        incident("inc-later", "db", &["db"], "fp-1", BASE_MS + 5_000),
    ];
    s.upsert_incidents(&incidents).await.unwrap();
    let ids = |v: Vec<Incident>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let query = SimilarIncidents {
        services: vec!["db".into(), "api".into()],
        fingerprint: Some("fp-1".into()),
        exclude_id: "inc-now".into(),
        before: BASE_MS + 4_001,
        limit: 10,
    };
    assert_eq!(
        ids(s.similar_incidents(&query).await.unwrap()),
        ["inc-d", "inc-c", "inc-a"]
    );
    let only_services = SimilarIncidents {
        fingerprint: None,
        ..query.clone()
    };
    assert_eq!(
        ids(s.similar_incidents(&only_services).await.unwrap()),
        ["inc-d", "inc-a"]
    );
    let only_fingerprint = SimilarIncidents {
        services: vec![],
        ..query.clone()
    };
    assert_eq!(
        ids(s.similar_incidents(&only_fingerprint).await.unwrap()),
        ["inc-c", "inc-a"]
    );
    let limited = SimilarIncidents {
        limit: 1,
        ..query.clone()
    };
    assert_eq!(ids(s.similar_incidents(&limited).await.unwrap()), ["inc-d"]);
    let nothing = SimilarIncidents {
        services: vec![],
        fingerprint: None,
        ..query
    };
    assert!(s.similar_incidents(&nothing).await.unwrap().is_empty());
}

fn insight(event: &str, service: &str, fingerprint: &str, at: i64) -> EventInsight {
    EventInsight {
        event_id: event.into(),
        service_name: service.into(),
        severity: Severity::Critical,
        fingerprint: fingerprint.into(),
        root_causes: vec![
            "the card processor times out \"quoted\" ✓".into(),
            "a bad deploy".into(),
        ],
        recommended_actions: vec!["check the processor's status page".into()],
        related_concerns: vec![],
        confidence: 0.612_345_678_9,
        summary: "Payments fail at the processor.".into(),
        model: "gpt-x".into(),
        prompt_tokens: 321,
        completion_tokens: 45,
        latency_ms: 678,
        created_at: at,
    }
}

pub async fn event_insights_upsert_by_event_and_filter_newest_first(b: &Backend) {
    let s = &b.store;
    let first = insight("evt-1", "payments", "fp-1", BASE_MS);
    s.upsert_event_insight(&first).await.unwrap();
    assert_eq!(
        s.get_event_insight("evt-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(s.get_event_insight("evt-unknown").await.unwrap(), None);
    // The same event again (a redelivery): replaced, not duplicated.
    let mut again = first.clone();
    again.summary = "Payments fail.".into();
    again.related_concerns = vec!["refunds may double".into()];
    s.upsert_event_insight(&again).await.unwrap();
    assert_eq!(b.count("event_insights").await, 1);
    assert_eq!(
        s.get_event_insight("evt-1").await.unwrap(),
        Some(again.clone())
    );

    let others = [
        insight("evt-2", "payments", "fp-2", BASE_MS + 1_000),
        insight("evt-3", "search", "fp-1", BASE_MS + 2_000),
        insight("evt-4", "payments", "fp-1", BASE_MS + 3_000),
    ];
    for i in &others {
        s.upsert_event_insight(i).await.unwrap();
    }
    let ids = |v: Vec<EventInsight>| v.into_iter().map(|i| i.event_id).collect::<Vec<_>>();
    let all = InsightQuery {
        limit: 100,
        ..InsightQuery::default()
    };
    assert_eq!(
        ids(s.list_event_insights(&all).await.unwrap()),
        ["evt-4", "evt-3", "evt-2", "evt-1"]
    );
    let payments = InsightQuery {
        service: Some("payments".into()),
        ..all.clone()
    };
    assert_eq!(
        ids(s.list_event_insights(&payments).await.unwrap()),
        ["evt-4", "evt-2", "evt-1"]
    );
    let recent_fp1 = InsightQuery {
        fingerprint: Some("fp-1".into()),
        since: Some(BASE_MS + 1),
        ..all.clone()
    };
    assert_eq!(
        ids(s.list_event_insights(&recent_fp1).await.unwrap()),
        ["evt-4", "evt-3"]
    );
    let window = InsightQuery {
        since: Some(BASE_MS + 1_000),
        until: Some(BASE_MS + 3_000),
        ..all.clone()
    };
    assert_eq!(
        ids(s.list_event_insights(&window).await.unwrap()),
        ["evt-3", "evt-2"]
    );
    let one = InsightQuery {
        limit: 0,
        ..all.clone()
    };
    assert_eq!(ids(s.list_event_insights(&one).await.unwrap()), ["evt-4"]);
    let mut nan = insight("evt-5", "payments", "fp-1", BASE_MS);
    nan.confidence = f64::NAN;
    assert!(matches!(
        s.upsert_event_insight(&nan).await,
        Err(StoreError::InvalidData(_))
    ));
}
