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
fn unparseable_statements_are_refused_unless_the_rule_allows_them() {
    let sql = "DELETE FROM t WHERE (((";
    let strict = policy(r#"{"type": "deny_without_where"}"#);
    assert_eq!(
        denied_by(&strict, sql, Dialect::PostgreSql).map(|d| d.1),
        Some("statement could not be parsed, and rule deny_without_where does not allow unparseable statements".into())
    );
    let lenient = policy(r#"{"type": "deny_without_where", "allow_unparseable": true}"#);
    assert_eq!(denied_by(&lenient, sql, Dialect::PostgreSql), None);
    // A policy's own message stands for the rule's refusals, unparseable ones too.
    let custom = policy(r#"{"type": "deny_without_where", "message": "add a WHERE clause"}"#);
    assert_eq!(
        denied_by(&custom, sql, Dialect::PostgreSql).map(|d| d.1),
        Some("add a WHERE clause".into())
    );
    // Word and pattern rules still judge what does not parse.
    let words = policy(
        r#"{"type": "deny_without_where", "allow_unparseable": true}, {"type": "deny_words_list", "words": ["pg_sleep"]}"#,
    );
    assert_eq!(
        denied_by(&words, "SELECT pg_sleep(10) FROM ((", Dialect::PostgreSql).map(|d| d.0),
        Some("deny_words_list".into())
    );
}

/// The case DESIGN.md names: sqlparser cannot read a `DO` block, so a script holding one
/// and an unbounded DELETE used to pass `deny_without_where` unjudged.
#[test]
fn a_do_block_followed_by_an_unbounded_delete_is_refused_by_default() {
    let script = "DO $$ BEGIN PERFORM 1; END $$; DELETE FROM t";
    let by_default = policy(r#"{"type": "deny_without_where", "name": "no-unbounded-writes"}"#);
    let (rule, message) = denied_by(&by_default, script, Dialect::PostgreSql).expect("refused");
    assert_eq!(rule, "no-unbounded-writes");
    assert!(message.contains("could not be parsed") && message.contains("no-unbounded-writes"));
    let opted_in = policy(r#"{"type": "deny_without_where", "allow_unparseable": true}"#);
    assert_eq!(denied_by(&opted_in, script, Dialect::PostgreSql), None);
    // The DELETE inside the block's body is code too.
    assert!(
        denied_by(
            &by_default,
            "DO $$ BEGIN DELETE FROM t; END $$",
            Dialect::PostgreSql
        )
        .is_some()
    );
}

/// Unparseable statements that cannot hold what a rule looks for still pass it: the rule's
/// words only count in code, not in string literals or comments.
#[test]
fn unparseable_statements_pass_rules_they_cannot_concern() {
    let rules = policy(
        r#"{"type": "deny_without_where"}, {"type": "deny_statements", "statements": ["drop", "truncate", "alter"]},
           {"type": "deny_tables", "tables": ["payroll"]}, {"type": "deny_multiple_statements"}"#,
    );
    for sql in [
        "this is not sql",
        // psql's \d payroll: the name travels in a regex literal.
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c          LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace          WHERE c.relname OPERATOR(pg_catalog.~) '^(payroll)$' COLLATE pg_catalog.default          AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3 ((",
        "SELECT 'delete; drop' -- update payroll
 ((",
        "DO $$ BEGIN PERFORM 1; END $$;",
    ] {
        assert_eq!(denied_by(&rules, sql, Dialect::PostgreSql), None, "{sql}");
    }
    for (sql, rule) in [
        (
            "DO $$ BEGIN UPDATE t SET a = 1; END $$",
            "deny_without_where",
        ),
        ("DO $$ BEGIN DROP TABLE t; END $$", "deny_statements"),
        (
            "DO $$ BEGIN PERFORM * FROM \"Payroll\"; END $$",
            "deny_tables",
        ),
        (
            "DO $$ BEGIN PERFORM 1; END $$; SELECT 1",
            "deny_multiple_statements",
        ),
    ] {
        assert_eq!(
            denied_by(&rules, sql, Dialect::PostgreSql).map(|d| d.0),
            Some(rule.to_owned()),
            "{sql}"
        );
    }
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

/// What real clients send on their own (psql's `\d`, pgbench's script and
/// initialisation, drivers' session setup, the mariadb CLI and sysbench) passes every
/// statement-aware rule that does not name it: fail-closed must not refuse a client's
/// own traffic. Those `sqlparser` cannot parse (pgbench's `copy ... with (freeze on)`,
/// `vacuum analyze`) pass because they cannot hold what the rules look for.
#[test]
fn real_client_traffic_passes_the_fail_closed_rules() {
    let rules = policy(
        r#"{"type": "deny_without_where"}, {"type": "deny_statements", "statements": ["drop", "truncate"]},
           {"type": "deny_tables", "tables": ["payroll", "hr.salaries"]}, {"type": "deny_multiple_statements"}"#,
    );
    let pg = [
        // psql \d pg_class, \l
        "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) '^(pg_class)$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;",
        "SELECT d.datname as \"Name\",\n       pg_catalog.pg_get_userbyid(d.datdba) as \"Owner\",\n       pg_catalog.pg_encoding_to_char(d.encoding) as \"Encoding\",\n       d.datcollate as \"Collate\",\n       d.datctype as \"Ctype\",\n       pg_catalog.array_to_string(d.datacl, E'\\n') AS \"Access privileges\"\nFROM pg_catalog.pg_database d\nORDER BY 1;",
        "BEGIN;",
        "UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 55;",
        "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 55;",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP);",
        "END;",
        "copy pgbench_accounts from stdin with (freeze on)",
        "vacuum analyze pgbench_branches",
        "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1",
        "SET DateStyle=ISO",
        "SHOW server_version",
        "SELECT typname, oid, typarray FROM pg_type WHERE typname = ANY($1::text[])",
        "BEGIN ISOLATION LEVEL READ COMMITTED",
        "DISCARD ALL",
    ];
    for sql in pg {
        assert_eq!(denied_by(&rules, sql, Dialect::PostgreSql), None, "{sql}");
    }
    let mysql = [
        "select @@version_comment limit 1",
        "SHOW DATABASES",
        "SET NAMES utf8mb4",
        "SET @@session.autocommit = OFF",
        "SHOW FULL TABLES FROM `test` LIKE 'x'",
        "START TRANSACTION",
        "UPDATE sbtest1 SET k=k+1 WHERE id=5003",
        "DELETE FROM sbtest1 WHERE id=5003",
        "SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c",
        "COMMIT",
    ];
    for sql in mysql {
        assert_eq!(denied_by(&rules, sql, Dialect::MySql), None, "{sql}");
    }
}
