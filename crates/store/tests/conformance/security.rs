//! The security tables behind [`SecurityStore`]: users, API keys, refresh-token rotation
//! and the audit trail, identical on every backend.

use sightline_model::{ActorKind, ApiKey, AuditEntry, Role, Scope, User};
use sightline_store::{AuditQuery, Cursor, RefreshToken, StoreError, UserChange};

use super::{BASE_MS, Backend};

fn user(name: &str, role: Role) -> User {
    User {
        id: uuid::Uuid::now_v7().to_string(),
        username: name.to_owned(),
        role,
        disabled: false,
        created_at: BASE_MS,
        updated_at: BASE_MS,
    }
}

pub async fn users_are_unique_and_updatable(b: &Backend) {
    let store = &b.store;
    assert_eq!(store.count_users().await.unwrap(), 0);
    let alice = user("alice", Role::Engineer);
    store.create_user(&alice, "$argon2id$hash-a").await.unwrap();
    let dup = store
        .create_user(&user("alice", Role::Admin), "x")
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
    store
        .create_user(&user("bob", Role::Viewer), "$argon2id$hash-b")
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 2);

    let (found, hash) = store.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(
        (found.clone(), hash.as_str()),
        (alice.clone(), "$argon2id$hash-a")
    );
    assert_eq!(
        store.user_by_id(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_name("carol").await.unwrap(), None);

    let change = UserChange {
        role: Some(Role::Approver),
        disabled: Some(true),
        password_hash: None,
    };
    assert!(
        store
            .update_user(&alice.id, &change, BASE_MS + 5)
            .await
            .unwrap()
    );
    assert!(!store.update_user("nobody", &change, BASE_MS).await.unwrap());
    let (after, hash) = store.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(
        (after.role, after.disabled, after.updated_at, hash.as_str()),
        (Role::Approver, true, BASE_MS + 5, "$argon2id$hash-a")
    );
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
}

pub async fn api_keys_round_trip_and_revoke_once(b: &Backend) {
    let store = &b.store;
    let key = ApiKey {
        id: "k1abcdef".into(),
        name: "checkout-producer".into(),
        scopes: vec![Scope::IngestEvents, Scope::IngestMetrics],
        allowed_ips: vec!["10.0.0.0/8".into(), "::1/128".into()],
        rate_per_minute: Some(600),
        created_by: "cli".into(),
        created_at: BASE_MS,
        revoked_at: None,
    };
    store.create_api_key(&key, "digest").await.unwrap();
    let older = ApiKey {
        id: "k0".into(),
        scopes: vec![Scope::Read],
        allowed_ips: vec![],
        rate_per_minute: None,
        created_at: BASE_MS - 1,
        ..key.clone()
    };
    store.create_api_key(&older, "digest0").await.unwrap();
    assert_eq!(
        store.api_key("k1abcdef").await.unwrap(),
        Some((key.clone(), "digest".to_owned()))
    );
    let listed = store.list_api_keys().await.unwrap();
    assert_eq!(listed, vec![key.clone(), older.clone()]);
    assert!(store.revoke_api_key("k1abcdef", BASE_MS + 9).await.unwrap());
    assert!(
        !store
            .revoke_api_key("k1abcdef", BASE_MS + 10)
            .await
            .unwrap()
    );
    assert!(!store.revoke_api_key("missing", BASE_MS).await.unwrap());
    let (revoked, _) = store.api_key("k1abcdef").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(BASE_MS + 9));
}

pub async fn refresh_tokens_rotate_once_and_revoke_by_family_and_user(b: &Backend) {
    let store = &b.store;
    let token = |hash: &str, user: &str, family: &str| RefreshToken {
        token_hash: hash.into(),
        user_id: user.into(),
        family: family.into(),
        expires_at: BASE_MS + 1000,
        created_at: BASE_MS,
        revoked_at: None,
    };
    for t in [
        token("t1", "u1", "f1"),
        token("t2", "u1", "f1"),
        token("t3", "u1", "f2"),
        token("t4", "u2", "f3"),
    ] {
        store.insert_refresh_token(&t).await.unwrap();
    }
    assert_eq!(
        store.refresh_token("t1").await.unwrap(),
        Some(token("t1", "u1", "f1"))
    );
    // Exactly one of two uses of the same token wins.
    assert!(store.revoke_refresh_token("t1", BASE_MS + 1).await.unwrap());
    assert!(!store.revoke_refresh_token("t1", BASE_MS + 2).await.unwrap());
    assert_eq!(
        store.refresh_token("t1").await.unwrap().unwrap().revoked_at,
        Some(BASE_MS + 1)
    );
    assert_eq!(
        store
            .revoke_refresh_family("f1", BASE_MS + 3)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .revoke_user_refresh_tokens("u1", BASE_MS + 4)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.refresh_token("t4").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(store.refresh_token("nope").await.unwrap(), None);
}

pub async fn audit_entries_filter_and_paginate_newest_first(b: &Backend) {
    let store = &b.store;
    let mut all = Vec::new();
    for i in 0..25_i64 {
        let (actor, action) = match i % 3 {
            0 => ("alice", "auth.login"),
            1 => ("bob", "auth.login_failed"),
            _ => ("alice", "api_key.create"),
        };
        let mut entry = AuditEntry::new(BASE_MS + i / 2, actor, ActorKind::User, action)
            .target(format!("t{i}"))
            .from_ip(Some(std::net::IpAddr::from([127, 0, 0, 1])))
            .details(serde_json::json!({ "i": i, "note": "a_b%c" }));
        if i % 3 == 1 {
            entry = entry.failed();
        }
        store.append_audit(&entry).await.unwrap();
        all.push(entry);
    }
    all.sort_by(|a, b| (b.timestamp, &b.id).cmp(&(a.timestamp, &a.id)));

    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .query_audit(&AuditQuery {
                limit: 7,
                cursor: cursor.clone(),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(Cursor::decode(&c).unwrap()),
            None => break,
        }
        assert!(seen.len() <= all.len(), "pagination repeats");
    }
    assert_eq!(seen, all);

    let logins = store
        .query_audit(&AuditQuery {
            action_prefix: Some("auth.login".into()),
            actor: Some("alice".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let expected: Vec<_> = all
        .iter()
        .filter(|e| e.actor == "alice" && e.action.starts_with("auth.login"))
        .cloned()
        .collect();
    assert_eq!(logins.items, expected);
    // `_` in a prefix is literal, not a wildcard.
    let none = store
        .query_audit(&AuditQuery {
            action_prefix: Some("auth_".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let ranged = store
        .query_audit(&AuditQuery {
            since: Some(BASE_MS + 3),
            until: Some(BASE_MS + 5),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ranged.items.len(), 4);
}
