//! The store's behaviour, identical on SQLite and PostgreSQL.

use super::*;
use crate::testing::{Backend, TestStore, on_both_backends};

fn agent(name: &str) -> AgentRecord {
    AgentRecord {
        id: crate::crypto::new_id().unwrap(),
        name: name.into(),
        mode: "standard".into(),
        key_hash: crate::crypto::hash_token(name),
        metadata: "{}".into(),
        created_at: records::now(),
    }
}

fn connection(name: &str, agent_id: &str) -> ConnectionRecord {
    ConnectionRecord {
        id: crate::crypto::new_id().unwrap(),
        name: name.into(),
        kind: "database".into(),
        subtype: Some("postgres".into()),
        agent_id: Some(agent_id.into()),
        resource_name: None,
        attributes: "{}".into(),
        secret: vec![1, 2, 3, 0, 255],
        created_at: 1,
        updated_at: 2,
    }
}

fn audit(connection_id: &str) -> PluginConfigRecord {
    PluginConfigRecord {
        plugin: "audit".into(),
        connection_id: connection_id.into(),
        config: "[]".into(),
    }
}

async fn migrations_apply_once_and_data_survives_reopen(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let a = agent("a1");
    store.insert_agent(&a).await.unwrap();
    drop(store);
    let reopened = test.open().await;
    assert_eq!(reopened.find_agent("a1").await.unwrap(), Some(a.clone()));
    assert_eq!(reopened.find_agent(&a.id).await.unwrap(), Some(a));
    let versions = reopened
        .query("SELECT version FROM schema_migrations", vec![])
        .await
        .unwrap();
    assert_eq!(versions.len(), migrations::MIGRATIONS.len());
}

async fn duplicate_names_conflict(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    store.insert_agent(&agent("dup")).await.unwrap();
    assert!(matches!(
        store.insert_agent(&agent("dup")).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.list_agents().await.unwrap().len(), 1);
}

async fn failed_transaction_writes_nothing(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let a = agent("a");
    store.insert_agent(&a).await.unwrap();
    let first = connection("pg", &a.id);
    store
        .insert_connection(&first, &[audit(&first.id)])
        .await
        .unwrap();
    // Same name: the connection insert fails, so its plugin rows must not land.
    let second = connection("pg", &a.id);
    assert!(matches!(
        store.insert_connection(&second, &[audit(&second.id)]).await,
        Err(StoreError::Conflict)
    ));
    // New name but a plugin row that collides: the connection must not land.
    let third = connection("pg3", &a.id);
    let collide = [audit(&third.id), audit(&third.id)];
    assert!(matches!(
        store.insert_connection(&third, &collide).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.list_connections().await.unwrap(), vec![first.clone()]);
    assert_eq!(
        store.list_plugin_connections().await.unwrap(),
        vec![audit(&first.id)]
    );
}

async fn connections_round_trip_update_and_delete(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let a = agent("a");
    store.insert_agent(&a).await.unwrap();
    let mut c = connection("pg", &a.id);
    store.insert_connection(&c, &[audit(&c.id)]).await.unwrap();
    assert_eq!(store.find_connection("pg").await.unwrap(), Some(c.clone()));
    c.name = "renamed".into();
    c.subtype = None;
    c.kind = "custom".into();
    let off = PluginChange {
        plugin: "audit".into(),
        config: None,
    };
    let dlp = PluginChange {
        plugin: "dlp".into(),
        config: Some("[]".into()),
    };
    assert!(store.update_connection(&c, &[off, dlp]).await.unwrap());
    let plugins = store.list_plugin_connections().await.unwrap();
    assert_eq!(plugins.len(), 1);
    assert_eq!(plugins[0].plugin, "dlp");
    assert_eq!(store.find_connection(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.agent_references(&a.id).await.unwrap(), 1);
    assert!(matches!(
        store.delete_agent(&a.id).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.delete_connection(&c.id).await.unwrap());
    assert!(!store.delete_connection(&c.id).await.unwrap());
    assert!(store.list_plugin_connections().await.unwrap().is_empty());
    assert!(store.delete_agent(&a.id).await.unwrap());
}

async fn plugins_replace_whole_set(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let a = agent("a");
    store.insert_agent(&a).await.unwrap();
    let c = connection("pg", &a.id);
    store.insert_connection(&c, &[]).await.unwrap();
    let dlp = PluginConfigRecord {
        plugin: "dlp".into(),
        connection_id: c.id.clone(),
        config: r#"["EMAIL_ADDRESS"]"#.into(),
    };
    // Listed before the plugin has a row of its own: the entry, no config.
    store
        .update_connection(
            &c,
            &[PluginChange {
                plugin: "dlp".into(),
                config: Some("[]".into()),
            }],
        )
        .await
        .unwrap();
    let entry = |config: &str, plugin_config: Option<&str>| PluginEntryRecord {
        config: config.into(),
        plugin_config: plugin_config.map(str::to_owned),
    };
    assert_eq!(
        store.plugin_entry("dlp", &c.id).await.unwrap(),
        Some(entry("[]", None))
    );
    store
        .replace_plugin("dlp", "{}", std::slice::from_ref(&dlp))
        .await
        .unwrap();
    assert_eq!(
        store.plugin_entry("dlp", &c.id).await.unwrap(),
        Some(entry(r#"["EMAIL_ADDRESS"]"#, Some("{}")))
    );
    assert_eq!(store.plugin_entry("review", &c.id).await.unwrap(), None);
    store
        .replace_plugin("dlp", r#"{"k":1}"#, std::slice::from_ref(&dlp))
        .await
        .unwrap();
    assert_eq!(store.list_plugin_connections().await.unwrap(), vec![dlp]);
    assert_eq!(
        store.plugin_config("dlp").await.unwrap().as_deref(),
        Some(r#"{"k":1}"#)
    );
    store.replace_plugin("dlp", "{}", &[]).await.unwrap();
    assert!(store.list_plugin_connections().await.unwrap().is_empty());
    assert_eq!(store.plugin_entry("dlp", &c.id).await.unwrap(), None);
}

async fn users_groups_and_tokens(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let mut user = UserRecord {
        id: crate::crypto::new_id().unwrap(),
        email: "ann@example.com".into(),
        name: "Ann".into(),
        status: "active".into(),
        groups: vec!["admin".into(), "sre".into()],
        created_at: 5,
    };
    store.insert_user(&user).await.unwrap();
    store.insert_group("sre").await.unwrap();
    assert!(matches!(
        store.insert_group("sre").await,
        Err(StoreError::Conflict)
    ));
    let token = TokenRecord {
        id: crate::crypto::new_id().unwrap(),
        name: "ci".into(),
        user_id: user.id.clone(),
        token_hash: crate::crypto::hash_token("tok"),
        created_at: 6,
    };
    store.insert_token(&token).await.unwrap();
    assert_eq!(
        store
            .user_for_token(&crate::crypto::hash_token("tok"))
            .await
            .unwrap(),
        Some(user.clone())
    );
    assert_eq!(store.user_for_token("nope").await.unwrap(), None);
    user.groups = vec![];
    assert!(store.update_user(&user).await.unwrap());
    assert_eq!(
        store.find_user("ann@example.com").await.unwrap(),
        Some(user.clone())
    );
    assert!(store.delete_user(&user.id).await.unwrap());
    assert!(store.list_tokens().await.unwrap().is_empty());
    assert!(store.delete_group("sre").await.unwrap());
    assert!(store.list_groups().await.unwrap().is_empty());
}

async fn guardrails_round_trip_update_and_delete(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let mut guardrail = GuardrailRecord {
        id: crate::crypto::new_id().unwrap(),
        name: "no-deletes".into(),
        description: "".into(),
        input: r#"[{"type":"deny_words_list","words":["delete"]}]"#.into(),
        output: "[]".into(),
        created_at: 1,
        updated_at: 1,
    };
    store.insert_guardrail(&guardrail).await.unwrap();
    assert!(matches!(
        store.insert_guardrail(&guardrail).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.find_guardrail("no-deletes").await.unwrap(),
        Some(guardrail.clone())
    );
    guardrail.input = "[]".into();
    guardrail.updated_at = 2;
    assert!(store.update_guardrail(&guardrail).await.unwrap());
    assert_eq!(
        store.list_guardrails().await.unwrap(),
        vec![guardrail.clone()]
    );
    assert!(store.delete_guardrail(&guardrail.id).await.unwrap());
    assert!(!store.delete_guardrail(&guardrail.id).await.unwrap());
    assert_eq!(store.find_guardrail(&guardrail.id).await.unwrap(), None);
}

/// A review changes only from the revision it was read at, each change
/// recorded once; a second writer from the same revision writes nothing.
async fn reviews_change_once_per_revision_with_their_events(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let mut review = ReviewRecord {
        id: crate::crypto::new_id().unwrap(),
        kind: "jit".into(),
        status: "PENDING".into(),
        connection_id: "c1".into(),
        connection_name: "pg".into(),
        user_id: "u1".into(),
        user_email: "ana@example.com".into(),
        token_hash: "h".into(),
        input: None,
        output_format: None,
        access_duration_sec: Some(60),
        time_window: None,
        review_groups: vec![ReviewGroup {
            group: "dba".into(),
            status: "PENDING".into(),
            reviewed_by: None,
            review_date: None,
            forced_review: false,
        }],
        min_approvals: None,
        session_id: None,
        output: None,
        exit_code: None,
        error: None,
        created_at: 10,
        updated_at: 10,
        expires_at: 20,
        revoke_at: None,
        revision: 1,
    };
    store.insert_review(&review).await.unwrap();
    assert_eq!(
        store.find_review(&review.id).await.unwrap(),
        Some(review.clone())
    );
    let mut approved = review.clone();
    approved.status = "APPROVED".into();
    approved.review_groups[0].status = "APPROVED".into();
    approved.revoke_at = Some(1_000);
    approved.updated_at = 11;
    approved.revision = 2;
    assert!(
        store
            .update_review(&approved, "bo@example.com", false, None)
            .await
            .unwrap()
    );
    // Another writer that read revision 1 too.
    review.status = "REJECTED".into();
    review.revision = 2;
    assert!(
        !store
            .update_review(&review, "cy@example.com", false, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_review(&review.id).await.unwrap(),
        Some(approved.clone())
    );
    let events = store.review_events(&review.id).await.unwrap();
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.status.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("PENDING", "ana@example.com"),
            ("APPROVED", "bo@example.com")
        ]
    );
    assert_eq!(
        store.approved_access("u1", "c1", 999).await.unwrap().len(),
        1
    );
    assert!(
        store
            .approved_access("u1", "c1", 1_000)
            .await
            .unwrap()
            .is_empty()
    );
    let filter = ReviewFilter {
        status: Some("APPROVED".into()),
        connection: Some("pg".into()),
        requester: Some("ana@example.com".into()),
    };
    assert_eq!(
        store.list_reviews(&filter, 10).await.unwrap(),
        vec![approved]
    );
    assert!(store.reviews_in("PENDING").await.unwrap().is_empty());
}

/// The webhooks outbox: due deliveries come back oldest first; an
/// attempt and the delivery's new state are written together.
async fn webhook_deliveries_wait_until_due_and_keep_every_attempt(backend: Backend) {
    let test = TestStore::new(backend).await;
    let store = test.open().await;
    let delivery = |id: &str, created_at: i64| DeliveryRecord {
        id: id.into(),
        endpoint_url: "http://127.0.0.1:1/hook".into(),
        secret: vec![0, 1, 2],
        event_type: "session.open".into(),
        payload: "{}".into(),
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: created_at,
        created_at,
        updated_at: created_at,
    };
    store
        .queue_deliveries(&[delivery("msg_b", 20), delivery("msg_a", 10)])
        .await
        .unwrap();
    let due = store.due_deliveries(15, 10).await.unwrap();
    assert_eq!(due, vec![delivery("msg_a", 10)]);
    let mut retried = due[0].clone();
    retried.attempts = 1;
    retried.next_attempt_at = 1_000;
    retried.updated_at = 16;
    let attempt = AttemptRecord {
        delivery_id: "msg_a".into(),
        attempt: 1,
        at: 16,
        status_code: Some(503),
        error: Some("the endpoint answered 503".into()),
    };
    store.record_attempt(&retried, &attempt).await.unwrap();
    let due: Vec<String> = store
        .due_deliveries(100, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due, ["msg_b"]);
    let listed = store.list_deliveries(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1], (retried, vec![attempt]));
}

on_both_backends!(
    webhook_deliveries_wait_until_due_and_keep_every_attempt,
    reviews_change_once_per_revision_with_their_events,
    migrations_apply_once_and_data_survives_reopen,
    duplicate_names_conflict,
    failed_transaction_writes_nothing,
    connections_round_trip_update_and_delete,
    plugins_replace_whole_set,
    users_groups_and_tokens,
    guardrails_round_trip_update_and_delete,
);
