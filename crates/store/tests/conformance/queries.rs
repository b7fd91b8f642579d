//! Conformance cases for continuous SQL: statements keep their creation order and unique
//! names, and a table's rows upsert by row key, delete on tombstones and read by group key.

use serde_json::json;
use sightline_store::{QueryRow, QueryRowsRequest, StoreError, StreamStatement};

use super::{BASE_MS, Backend};

fn statement(name: &str, at: i64) -> StreamStatement {
    StreamStatement {
        id: format!("id-{name}-{at}"),
        name: name.into(),
        sql: format!(
            "CREATE STREAM {name} (a VARCHAR) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON')"
        ),
        created_at: at,
        created_by: "alice".into(),
    }
}

fn row(group: &str, window: Option<i64>, n: i64) -> QueryRow {
    let group_key = format!("[\"{group}\"]");
    QueryRow {
        key: match window {
            Some(w) => format!("{group_key}@{w}"),
            None => group_key.clone(),
        },
        group_key,
        window_start: window,
        window_end: window.map(|w| w + 60_000),
        value: Some(json!({"k": group, "n": n, "nested": {"x": [1, 2.5, null]}})),
        event_time: BASE_MS + n,
    }
}

fn request(query_id: &str, group_key: Option<&str>) -> QueryRowsRequest {
    QueryRowsRequest {
        query_id: query_id.into(),
        group_key: group_key.map(str::to_owned),
        limit: 1000,
    }
}

pub async fn statements_keep_order_and_unique_names(b: &Backend) {
    let store = &b.store;
    store
        .insert_statements(&[
            statement("b_stream", BASE_MS),
            statement("a_table", BASE_MS),
        ])
        .await
        .unwrap();
    store
        .insert_statements(&[statement("c", BASE_MS - 1)])
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_statements()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        ["b_stream", "a_table", "c"],
        "creation order, not name or time"
    );

    // A taken name refuses the whole batch.
    let err = store
        .insert_statements(&[statement("d", BASE_MS), statement("a_table", BASE_MS + 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.list_statements().await.unwrap().len(), 3);

    let removed = store.delete_statement("a_table").await.unwrap().unwrap();
    assert_eq!(removed.sql, statement("a_table", BASE_MS).sql);
    assert!(store.delete_statement("a_table").await.unwrap().is_none());
    store
        .insert_statements(&[statement("a_table", BASE_MS + 5)])
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_statements()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        ["b_stream", "c", "a_table"],
        "a re-created name goes last"
    );
}

pub async fn query_rows_upsert_delete_and_look_up(b: &Backend) {
    let store = &b.store;
    store
        .insert_statements(&[statement("t", BASE_MS)])
        .await
        .unwrap();
    let id = "id-t-1700000000000";
    let first = [
        row("s1", None, 1),
        row("s2", None, 1),
        row("s1", Some(BASE_MS), 1),
    ];
    assert_eq!(store.write_query_rows(id, &first).await.unwrap(), 3);
    // A replay and a newer version of one row: still three rows, s1 updated.
    store.write_query_rows(id, &first).await.unwrap();
    store
        .write_query_rows(id, &[row("s1", None, 7)])
        .await
        .unwrap();
    let all = store.read_query_rows(&request(id, None)).await.unwrap();
    assert_eq!(all.len(), 3);
    let s1 = store
        .read_query_rows(&request(id, Some("[\"s1\"]")))
        .await
        .unwrap();
    assert_eq!(s1.len(), 2, "the unwindowed row and the windowed one");
    let plain = s1.iter().find(|r| r.window_start.is_none()).unwrap();
    assert_eq!(
        plain,
        &row("s1", None, 7),
        "exact round trip of the newest version"
    );

    // Rows of another query id are separate.
    assert!(
        store
            .read_query_rows(&request("other", None))
            .await
            .unwrap()
            .is_empty()
    );

    // A tombstone deletes.
    let mut tomb = row("s2", None, 2);
    tomb.value = None;
    store.write_query_rows(id, &[tomb]).await.unwrap();
    assert!(
        store
            .read_query_rows(&request(id, Some("[\"s2\"]")))
            .await
            .unwrap()
            .is_empty()
    );

    // Dropping the table drops its rows.
    store.delete_statement("t").await.unwrap();
    assert!(
        store
            .read_query_rows(&request(id, None))
            .await
            .unwrap()
            .is_empty()
    );

    let mut bad = request(id, None);
    bad.limit = 0;
    assert!(matches!(
        store.read_query_rows(&bad).await.unwrap_err(),
        StoreError::InvalidQuery(_)
    ));
}
