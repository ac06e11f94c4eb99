//! Loading policies: the example file, defaults, and errors that name the field.

use hoop_masking::{Policy, PolicyErrorKind};

#[test]
fn example_policy_file_loads_and_compiles() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/policy.json"
    ))
    .unwrap();
    let policy = Policy::from_json(&text).unwrap().compile().unwrap();
    assert!(policy.memory_usage() > 10_000);
    assert!(policy.entity_id("EMPLOYEE_ID").is_some());
    assert!(policy.has_output_rules());
}

#[test]
fn empty_policy_is_the_default_entity_set() {
    let policy = Policy::from_json("{}").unwrap();
    assert_eq!(policy.masking.entities.len(), 13);
    assert!(policy.guardrails.input.is_empty());
}

fn error(json: &str) -> (String, PolicyErrorKind) {
    let e = match Policy::from_json(json) {
        Ok(p) => p.compile().unwrap_err(),
        Err(e) => e,
    };
    (e.path().to_owned(), e.kind().clone())
}

#[test]
fn errors_point_at_the_offending_field() {
    assert_eq!(
        error(r#"{"masking": {"entities": ["EMAIL_ADDRESS", "EMAIL"]}}"#).0,
        "masking.entities[1]"
    );
    assert_eq!(error(r#"{"masking": {"colums": []}}"#).0, "masking.colums");
    assert_eq!(
        error(r#"{"guardrails": {"input": [{"type": "deny_words_list", "words": "drop"}]}}"#).0,
        "guardrails.input[0]"
    );
    assert_eq!(
        error(r#"{"guardrails": {"input": [{"type": "no_such_rule"}]}}"#).0,
        "guardrails.input[0].type"
    );
    let (path, kind) = error(r#"{"masking": {"custom_entities": [{"name": "X", "regex": "("}]}}"#);
    assert_eq!(path, "masking.custom_entities[0].regex");
    assert!(matches!(kind, PolicyErrorKind::Regex(_)));
    let (path, kind) =
        error(r#"{"guardrails": {"input": [{"type": "pattern_match", "pattern_regex": "[a-"}]}}"#);
    assert_eq!(path, "guardrails.input[0].pattern_regex");
    assert!(matches!(kind, PolicyErrorKind::Regex(_)));
    assert_eq!(
        error(r#"{"guardrails": {"input": [{"type": "deny_words_list", "words": []}]}}"#),
        ("guardrails.input[0].words".into(), PolicyErrorKind::Empty)
    );
    assert_eq!(
        error(r#"{"masking": {"custom_entities": [{"name": "X", "regex": "a", "words": ["b"]}]}}"#),
        (
            "masking.custom_entities[0]".into(),
            PolicyErrorKind::RegexOrWords
        )
    );
    assert_eq!(
        error(r#"{"masking": {"custom_entities": [{"name": "EMAIL_ADDRESS", "words": ["b"]}]}}"#).1,
        PolicyErrorKind::Duplicate("EMAIL_ADDRESS".into())
    );
    assert_eq!(
        error(r#"{"masking": {"transforms": {"NOPE": {"type": "null"}}}}"#),
        (
            "masking.transforms.NOPE".into(),
            PolicyErrorKind::UnknownEntity("NOPE".into())
        )
    );
    assert_eq!(
        error(r#"{"masking": {"transform": {"type": "hmac_sha256", "key": ""}}}"#).0,
        "masking.transform.key"
    );
    assert_eq!(
        error(
            r#"{"guardrails": {"input": [{"type": "deny_without_where", "statements": ["select"]}]}}"#
        ),
        (
            "guardrails.input[0].statements[0]".into(),
            PolicyErrorKind::StatementKind("select")
        )
    );
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = Policy::from_json("{\n  \"masking\": {\"entities\": [1]}\n}").unwrap_err();
    assert_eq!(e.path(), "masking.entities[0]");
    assert_eq!(e.position().map(|p| p.0), Some(2));
    assert!(e.to_string().contains("masking.entities[0]"));
}

#[test]
fn debug_output_hides_hmac_keys() {
    let p = Policy::from_json(
        r#"{"masking": {"transform": {"type": "hmac_sha256", "key": "topsecret"}}}"#,
    )
    .unwrap();
    assert!(!format!("{p:?}").contains("topsecret"));
    assert!(!format!("{:?}", p.compile().unwrap()).contains("topsecret"));
}
