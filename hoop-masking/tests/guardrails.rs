//! Guardrails: statement-aware rules in both dialects, word and pattern rules, output rules.

use hoop_masking::{CompiledPolicy, Dialect, Policy, Verdict};

fn policy(rules: &str) -> CompiledPolicy {
    Policy::from_json(&format!(r#"{{"guardrails": {{"input": [{rules}]}}}}"#))
        .unwrap()
        .compile()
        .unwrap()
}

fn denied_by(p: &CompiledPolicy, sql: &str, d: Dialect) -> Option<(String, String)> {
    match p.check_statement(sql, d) {
        Verdict::Allow => None,
        Verdict::Deny(x) => Some((x.rule_name().to_owned(), x.message().to_owned())),
    }
}

#[test]
fn refuses_delete_without_where_and_allows_it_with_where() {
    let p = policy(r#"{"type": "deny_without_where", "message": "add a WHERE clause"}"#);
    for d in [Dialect::PostgreSql, Dialect::MySql] {
        assert_eq!(
            denied_by(&p, "DELETE FROM t", d),
            Some(("deny_without_where".into(), "add a WHERE clause".into()))
        );
        assert_eq!(denied_by(&p, "DELETE FROM t WHERE id = 1", d), None);
        assert!(denied_by(&p, "update t set a = 1", d).is_some());
        assert_eq!(denied_by(&p, "UPDATE t SET a = 1 WHERE id = 2", d), None);
        assert_eq!(denied_by(&p, "SELECT * FROM t", d), None);
    }
    assert!(
        denied_by(
            &p,
            "UPDATE pgbench_accounts SET abalance = abalance + $1",
            Dialect::PostgreSql
        )
        .is_some()
    );
    assert!(
        denied_by(
            &p,
            "WITH d AS (SELECT 1) DELETE FROM t",
            Dialect::PostgreSql
        )
        .is_some()
    );
}

#[test]
fn refuses_listed_statement_kinds() {
    let p = policy(r#"{"type": "deny_statements", "statements": ["drop", "truncate", "alter"]}"#);
    for sql in [
        "DROP TABLE t",
        "drop index i",
        "TRUNCATE t",
        "ALTER TABLE t ADD COLUMN c int",
    ] {
        assert!(denied_by(&p, sql, Dialect::PostgreSql).is_some(), "{sql}");
    }
    assert_eq!(
        denied_by(&p, "SELECT dropped_at FROM t", Dialect::PostgreSql),
        None
    );
    assert_eq!(
        denied_by(&p, "CREATE TABLE t (a int)", Dialect::PostgreSql),
        None
    );
}

#[test]
fn refuses_statements_touching_listed_tables() {
    let p = policy(
        r#"{"type": "deny_tables", "tables": ["payroll", "hr.salaries"], "name": "tables"}"#,
    );
    for sql in [
        "SELECT * FROM payroll",
        "select * from public.PAYROLL p join x on true",
        "INSERT INTO payroll VALUES (1)",
        "DELETE FROM payroll WHERE id = 1",
        "DROP TABLE payroll",
        "SELECT * FROM hr.salaries",
        "SELECT * FROM t WHERE id IN (SELECT id FROM payroll)",
    ] {
        assert!(denied_by(&p, sql, Dialect::PostgreSql).is_some(), "{sql}");
    }
    for sql in [
        "SELECT * FROM payroll_archive",
        "SELECT * FROM other.salaries",
        "SELECT 'payroll'",
    ] {
        assert_eq!(denied_by(&p, sql, Dialect::PostgreSql), None, "{sql}");
    }
}

#[test]
fn refuses_more_than_one_statement() {
    let p = policy(r#"{"type": "deny_multiple_statements"}"#);
    assert!(denied_by(&p, "SELECT 1; DELETE FROM t", Dialect::PostgreSql).is_some());
    assert_eq!(denied_by(&p, "SELECT 1;", Dialect::PostgreSql), None);
    assert_eq!(denied_by(&p, "SELECT ';'", Dialect::PostgreSql), None);
}

#[test]
fn unparseable_statements_pass_only_where_the_rule_allows() {
    let sql = "DELETE FROM t WHERE (((";
    let lenient = policy(r#"{"type": "deny_without_where"}"#);
    assert_eq!(denied_by(&lenient, sql, Dialect::PostgreSql), None);
    let strict = policy(r#"{"type": "deny_without_where", "allow_unparseable": false}"#);
    assert_eq!(
        denied_by(&strict, sql, Dialect::PostgreSql).map(|d| d.1),
        Some("statement could not be parsed, and rule deny_without_where does not allow unparseable statements".into())
    );
    assert!(denied_by(&strict, "this is not sql", Dialect::PostgreSql).is_some());
    // Word and pattern rules still judge what does not parse.
    let words = policy(
        r#"{"type": "deny_without_where"}, {"type": "deny_words_list", "words": ["pg_sleep"]}"#,
    );
    assert_eq!(
        denied_by(&words, "SELECT pg_sleep(10) FROM ((", Dialect::PostgreSql).map(|d| d.0),
        Some("deny_words_list".into())
    );
}

#[test]
fn words_match_whole_words_case_insensitively() {
    let p =
        policy(r#"{"type": "deny_words_list", "words": ["drop", "pg_sleep"], "message": "no"}"#);
    assert!(denied_by(&p, "DROP TABLE t", Dialect::PostgreSql).is_some());
    assert!(denied_by(&p, "select PG_SLEEP(1)", Dialect::PostgreSql).is_some());
    assert_eq!(
        denied_by(
            &p,
            "SELECT dropped_at, backdrop FROM t",
            Dialect::PostgreSql
        ),
        None
    );
    assert_eq!(
        denied_by(&p, "SELECT my_pg_sleep(1)", Dialect::PostgreSql),
        None
    );
}

#[test]
fn pattern_rules_and_parameter_checks() {
    let p = policy(
        r#"{"type": "pattern_match", "pattern_regex": "(?i)into\\s+outfile", "message": "no files"},
           {"type": "deny_words_list", "words": ["secret"], "check_parameters": true}"#,
    );
    assert_eq!(
        denied_by(
            &p,
            "SELECT * FROM t INTO   OUTFILE '/tmp/x'",
            Dialect::MySql
        )
        .map(|d| d.1),
        Some("no files".into())
    );
    assert!(!p.check_parameter(b"my secret value").is_allowed());
    assert!(p.check_parameter(b"into outfile").is_allowed());
}

#[test]
fn output_rules_deny_rows_with_matching_cells() {
    let p = Policy::from_json(
        r#"{"guardrails": {"output": [{"type": "pattern_match", "pattern_regex": "BEGIN [A-Z ]*PRIVATE KEY", "name": "keys"}]}}"#,
    )
    .unwrap()
    .compile()
    .unwrap();
    assert!(p.has_output_rules());
    assert!(p.check_row([Some(&b"hello"[..]), None]).is_allowed());
    let Verdict::Deny(d) = p.check_row([None, Some(&b"-----BEGIN RSA PRIVATE KEY-----"[..])])
    else {
        panic!()
    };
    assert_eq!((d.rule_name(), d.rule_index()), ("keys", 0));
}

#[test]
fn first_denying_rule_in_policy_order_decides() {
    let p = policy(
        r#"{"type": "deny_words_list", "words": ["payroll"], "name": "first"},
           {"type": "deny_tables", "tables": ["payroll"], "name": "second"}"#,
    );
    assert_eq!(
        denied_by(&p, "SELECT * FROM payroll", Dialect::PostgreSql).map(|d| d.0),
        Some("first".into())
    );
}
