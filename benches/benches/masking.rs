//! The masking matcher on realistic cells, against a naive baseline.
//!
//! Input: 20,000 cells generated deterministically: names, free-text notes, numbers,
//! timestamps, emails (5%), and notes mentioning emails, cards, SSNs, phones and IPs, or
//! look-alikes that must not be masked (5%). Both paths are checked before timing: the matcher
//! must mask exactly the planted values, so a fast wrong path fails the run.
//!
//! - `masking/default_entities`: `CellMasker::mask_cell` with the default policy over every
//!   cell (output written to a reused buffer).
//! - `masking/naive_regex_alternation`: one `regex::bytes::Regex` alternation of the same
//!   entity patterns (ASCII mode), `find_iter` over every cell, no validation.
//! - `guardrails/*`: `check_statement` on pgbench's statements with a typical rule set.
//! - `recording/*`: what the agent's recorder does to every statement text:
//!   `redact_credentials` on pgbench's statements (nothing to replace: the borrowed path)
//!   and on an `ALTER USER ... PASSWORD`, and `CellMasker::mask_text` with the default
//!   policy's detectors; `recording/naive_*` is the baseline a recorder without them pays
//!   anyway, copying the text.
//! - `masking_scaling/*`: one cell of 1x, 10x and 100x a base size (10,200 bytes, so 100x
//!   stays under the default `max_cell_bytes`), dense with values to mask: the same email
//!   repeated (`select repeat('user@example.com ', n)`), distinct emails, card numbers, and
//!   prose with nothing to mask. Cost per byte must stay flat across the three sizes.
//!   `naive_regex_replace` is the baseline: the regex alternation's `replace_all` with a
//!   fixed label, no validation, no leak check.
//! - `masking_oversized/*`: a 50 MB cell, past the default `max_cell_bytes`, of repeated
//!   emails (masked whole by the cheaper rule) and of prose (scanned, nothing found).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use hoop_masking::{
    CellMasker, CellOutcome, ColumnInfo, CompiledPolicy, Dialect, EntityType, Policy, ResultPlan,
    ValueKind, redact_credentials,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Hiro", "Ines", "José", "Karl",
    "Lena",
];
const LAST: &[&str] = &[
    "Johnson", "Smith", "Nakamura", "García", "Müller", "Okafor", "Brown", "Lee", "Rossi", "Novak",
];
const WORDS: &[&str] = &[
    "customer",
    "asked",
    "about",
    "the",
    "new",
    "plan",
    "and",
    "will",
    "call",
    "back",
    "later",
    "order",
    "shipped",
    "delayed",
    "because",
    "of",
    "weather",
    "refund",
    "approved",
    "by",
    "support",
    "team",
    "invoice",
    "sent",
    "to",
    "billing",
    "address",
    "updated",
    "account",
    "notes",
    "prefers",
    "email",
    "contact",
    "on",
    "weekdays",
    "only",
    "escalated",
    "manager",
    "resolved",
    "issue",
    "with",
    "login",
    "password",
    "reset",
];
const CARDS: &[&str] = &[
    "4111 1111 1111 1111",
    "5555555555554444",
    "3782 822463 10005",
    "6011-1111-1111-1117",
];
const SSNS: &[&str] = &["123-45-6789", "219-09-9999", "078-05-1120"];
const PHONES: &[&str] = &["(555) 234-5678", "555-867-5309", "+1 415 555 2671"];
const IPS: &[&str] = &["10.0.0.7", "192.168.1.20", "2001:db8::8a2e:370:7334"];
const DECOYS: &[&str] = &[
    "4111 1111 1111 1112",
    "000-12-3456",
    "999.1.1.1",
    "order 20240105103045",
];

struct Corpus {
    cells: Vec<Vec<u8>>,
    kinds: Vec<&'static str>,
    bytes: usize,
    expected: [u64; 5],
}

fn sentence(r: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(r.pick(WORDS));
    }
    s
}

fn corpus() -> Corpus {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cells = Vec::new();
    let mut kinds = Vec::new();
    // email, card, ssn, phone, ip
    let mut expected = [0u64; 5];
    for _ in 0..20_000 {
        // About one cell in eight holds a sensitive value: names, notes, numbers and
        // timestamps make up the rest.
        // A realistic table: names, notes, numbers and timestamps; one cell in twenty an
        // email, about one in twenty-five a note naming a card, SSN, phone or IP address (or
        // a look-alike that must stay). `masking_by_kind` times each kind alone.
        let roll = r.below(1000);
        kinds.push(match roll {
            0..=249 => "names",
            250..=589 => "free_text",
            590..=749 => "numbers",
            750..=899 => "timestamps",
            900..=949 => "emails",
            _ => "text_with_entities",
        });
        let cell = match roll {
            0..=249 => format!("{} {}", r.pick(FIRST), r.pick(LAST)),
            250..=589 => {
                let n = 6 + r.below(20);
                let mut s = sentence(&mut r, n);
                s.push('.');
                s
            }
            590..=709 => format!("{}", r.next() % 100_000),
            710..=749 => format!("{}.{:02}", r.next() % 10_000, r.next() % 100),
            750..=899 => format!(
                "2024-{:02}-{:02} {:02}:{:02}:{:02}+00",
                1 + r.below(12),
                1 + r.below(28),
                r.below(24),
                r.below(60),
                r.below(60)
            ),
            900..=949 => {
                expected[0] += 1;
                format!("{}.{}@example.com", r.pick(FIRST), r.pick(LAST))
                    .to_lowercase()
                    .replace(['é', 'ü', 'í'], "e")
            }
            950..=959 => {
                let decoy = r.pick(DECOYS);
                format!("{} {}", sentence(&mut r, 5), decoy)
            }
            960..=969 => {
                expected[1] += 1;
                format!("{} paid with {} yesterday", r.pick(FIRST), r.pick(CARDS))
            }
            970..=979 => {
                expected[2] += 1;
                expected[3] += 1;
                format!(
                    "ssn {} phone {} {}",
                    r.pick(SSNS),
                    r.pick(PHONES),
                    sentence(&mut r, 4)
                )
            }
            980..=989 => {
                expected[4] += 1;
                format!("login from {} {}", r.pick(IPS), sentence(&mut r, 6))
            }
            _ => {
                expected[0] += 1;
                format!(
                    "{} wrote from bob.{}@mail.example.org about the {}",
                    r.pick(FIRST),
                    r.below(999),
                    sentence(&mut r, 8)
                )
            }
        };
        cells.push(cell.into_bytes());
    }
    let bytes = cells.iter().map(Vec::len).sum();
    Corpus {
        cells,
        kinds,
        bytes,
        expected,
    }
}

/// One session's work: the masker (and its warm regex caches) outlives the result set.
fn mask_all(masker: &mut CellMasker, plan: &ResultPlan, corpus: &Corpus) -> usize {
    let mut out = Vec::with_capacity(256);
    let mut replaced = 0;
    for cell in &corpus.cells {
        out.clear();
        if masker.mask_cell(plan, 0, cell, &mut out) == CellOutcome::Replaced {
            replaced += 1;
        }
    }
    replaced
}

/// The matcher masks exactly the planted values: counts per entity, and no decoy.
fn assert_detections(policy: &CompiledPolicy, corpus: &Corpus) {
    let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
    let mut masker = policy.masker();
    let mut out = Vec::new();
    for cell in &corpus.cells {
        let _ = masker.mask_cell(&plan, 0, cell, &mut out);
    }
    let count = |ty: EntityType| {
        let id = policy.entity_id(ty.name()).expect("entity enabled");
        masker
            .counts()
            .find(|(i, _, _)| *i == id)
            .map_or(0, |(_, _, n)| n)
    };
    let got = [
        count(EntityType::EmailAddress),
        count(EntityType::CreditCardNumber),
        count(EntityType::UsSocialSecurityNumber),
        count(EntityType::PhoneNumber),
        count(EntityType::IpAddress),
    ];
    assert_eq!(
        got, corpus.expected,
        "detections per entity (email, card, ssn, phone, ip)"
    );
    let total: u64 = masker.counts().map(|(_, _, n)| n).sum();
    assert_eq!(
        total,
        corpus.expected.iter().sum::<u64>(),
        "no other entity detected"
    );
}

fn naive_baseline() -> regex::bytes::Regex {
    let alternation: Vec<String> = EntityType::DEFAULT
        .iter()
        .filter(|e| !matches!(e, EntityType::DateOfBirth | EntityType::UsPassport))
        .map(|e| format!("(?:{})", e.reference_pattern()))
        .collect();
    regex::bytes::Regex::new(&format!("(?-u){}", alternation.join("|"))).expect("baseline compiles")
}

fn naive_count(re: &regex::bytes::Regex, corpus: &Corpus) -> usize {
    corpus.cells.iter().map(|c| re.find_iter(c).count()).sum()
}

fn bench_masking(c: &mut Criterion) {
    let corpus = corpus();
    let policy = Policy::from_json("{}")
        .expect("default policy")
        .compile()
        .expect("compiles");
    assert_detections(&policy, &corpus);
    let naive = naive_baseline();
    let planted: u64 = corpus.expected.iter().sum();
    assert!(
        naive_count(&naive, &corpus) as u64 >= planted,
        "baseline finds at least the planted values"
    );

    let mut g = c.benchmark_group("masking");
    g.throughput(Throughput::Bytes(corpus.bytes as u64));
    let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
    let mut masker = policy.masker();
    g.bench_function("default_entities", |b| {
        b.iter(|| black_box(mask_all(&mut masker, &plan, &corpus)))
    });
    g.bench_function("naive_regex_alternation", |b| {
        b.iter(|| black_box(naive_count(&naive, &corpus)))
    });
    g.finish();

    let mut g = c.benchmark_group("masking_by_kind");
    for kind in [
        "names",
        "free_text",
        "numbers",
        "timestamps",
        "emails",
        "text_with_entities",
    ] {
        let cells: Vec<Vec<u8>> = corpus
            .cells
            .iter()
            .zip(&corpus.kinds)
            .filter(|(_, k)| **k == kind)
            .map(|(c, _)| c.clone())
            .collect();
        let part = Corpus {
            bytes: cells.iter().map(Vec::len).sum(),
            kinds: vec![kind; cells.len()],
            cells,
            expected: [0; 5],
        };
        g.throughput(Throughput::Bytes(part.bytes as u64));
        g.bench_function(kind, |b| {
            b.iter(|| black_box(mask_all(&mut masker, &plan, &part)))
        });
    }
    g.finish();
    eprintln!(
        "masking corpus: {} cells, {} bytes, {} planted values, policy memory {} bytes",
        corpus.cells.len(),
        corpus.bytes,
        planted,
        policy.memory_usage()
    );
}

/// The base cell of `masking_scaling`: 600 repetitions of a 17-byte unit.
const SCALING_BASE: usize = 600;

/// A cell of `units` repetitions of a shape's 17-byte unit, and how many values to mask it
/// holds.
fn scaling_cell(shape: &str, units: usize) -> (Vec<u8>, u64) {
    let mut cell = Vec::with_capacity(units * 17);
    for i in 0..units {
        match shape {
            "same_email" => cell.extend_from_slice(b"user@example.com "),
            // 17 bytes each while i < 100,000: distinct local parts.
            "distinct_emails" => cell.extend_from_slice(format!("u{i:05}@examp.com ").as_bytes()),
            "cards" => cell.extend_from_slice(b"4111111111111111 "),
            _ => cell.extend_from_slice(b"the order shipped"),
        }
    }
    let planted = if shape == "prose" { 0 } else { units as u64 };
    (cell, planted)
}

/// Masks `cell` as one text cell with a fresh masker and checks the result: every planted
/// value masked (counted), none left in the output. Returns the output's length.
fn mask_checked(policy: &CompiledPolicy, cell: &[u8], planted: u64) -> usize {
    let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
    let mut masker = policy.masker();
    let mut out = Vec::new();
    let outcome = masker.mask_cell(&plan, 0, cell, &mut out);
    let counted: u64 = masker.counts().map(|(_, _, n)| n).sum();
    if planted == 0 {
        assert_eq!(outcome, CellOutcome::Unchanged);
        return cell.len();
    }
    assert_eq!(outcome, CellOutcome::Replaced);
    assert_eq!(counted, planted, "every value counted");
    let text = String::from_utf8_lossy(&out);
    assert!(
        !text.contains(".com") && !text.contains("4111111111111111"),
        "a value survived"
    );
    out.len()
}

fn bench_scaling(c: &mut Criterion) {
    let policy = CompiledPolicy::default();
    let naive = naive_baseline();
    let mut g = c.benchmark_group("masking_scaling");
    g.sample_size(10);
    for shape in ["same_email", "distinct_emails", "cards", "prose"] {
        for scale in [1, 10, 100] {
            let (cell, planted) = scaling_cell(shape, SCALING_BASE * scale);
            mask_checked(&policy, &cell, planted);
            let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
            let mut masker = policy.masker();
            let mut out = Vec::new();
            g.throughput(Throughput::Bytes(cell.len() as u64));
            g.bench_function(format!("{shape}/{scale}x"), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(masker.mask_cell(&plan, 0, black_box(&cell), &mut out))
                })
            });
            if shape == "same_email" {
                g.bench_function(format!("naive_regex_replace/{scale}x"), |b| {
                    b.iter(|| {
                        black_box(
                            naive
                                .replace_all(black_box(&cell), &b"[REDACTED]"[..])
                                .len(),
                        )
                    })
                });
            }
        }
    }
    g.finish();

    let mut g = c.benchmark_group("masking_oversized");
    g.sample_size(10);
    for shape in ["same_email", "prose"] {
        let (cell, planted) = scaling_cell(shape, 50_000_000 / 17);
        let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
        let mut masker = policy.masker();
        let mut out = Vec::new();
        let outcome = masker.mask_cell(&plan, 0, &cell, &mut out);
        if planted > 0 {
            assert_eq!(outcome, CellOutcome::Replaced);
            assert_eq!(
                out, b"[REDACTED:EMAIL_ADDRESS]",
                "masked whole by the cheaper rule"
            );
        } else {
            assert_eq!(outcome, CellOutcome::Unchanged);
        }
        g.throughput(Throughput::Bytes(cell.len() as u64));
        g.bench_function(format!("{shape}/50MB"), |b| {
            b.iter(|| {
                out.clear();
                black_box(masker.mask_cell(&plan, 0, black_box(&cell), &mut out))
            })
        });
    }
    g.finish();
}

fn bench_guardrails(c: &mut Criterion) {
    let policy = Policy::from_json(
        r#"{"guardrails": {"input": [
            {"type": "deny_words_list", "words": ["pg_sleep", "pg_read_file"]},
            {"type": "deny_without_where"},
            {"type": "deny_statements", "statements": ["drop", "truncate", "alter"]},
            {"type": "deny_multiple_statements"}
        ]}}"#,
    )
    .expect("policy")
    .compile()
    .expect("compiles");
    let select = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
    let update = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";
    assert!(
        policy
            .check_statement(select, Dialect::PostgreSql)
            .is_allowed()
    );
    assert!(
        policy
            .check_statement(update, Dialect::PostgreSql)
            .is_allowed()
    );
    assert!(
        !policy
            .check_statement("DELETE FROM pgbench_history", Dialect::PostgreSql)
            .is_allowed()
    );
    let mut g = c.benchmark_group("guardrails");
    g.bench_function("pgbench_select_no_parse", |b| {
        b.iter(|| black_box(policy.check_statement(select, Dialect::PostgreSql)))
    });
    g.bench_function("pgbench_update_parsed", |b| {
        b.iter(|| black_box(policy.check_statement(update, Dialect::PostgreSql)))
    });
    g.finish();
}

/// This thread's CPU time (user + system) from /proc, in seconds: on a shared 2-core
/// machine wall time also counts the time other processes held the core.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// `HOOP_BENCH_CPU=1`: throughput per CPU second (not wall time) for the same cases, about
/// two CPU seconds each; printed in the README's table. `HOOP_BENCH_ROUNDS` and
/// `HOOP_BENCH_CASE` fix the rounds and pick cases (for instruction counts).
fn cpu_time_report() {
    if std::env::var_os("HOOP_BENCH_CPU").is_none() {
        return;
    }
    let corpus = corpus();
    let policy = CompiledPolicy::default();
    let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
    let mut masker = policy.masker();
    let naive = naive_baseline();
    // For callgrind: `HOOP_BENCH_ROUNDS=N` runs exactly N rounds per case (instructions per
    // round do not depend on the machine's load), `HOOP_BENCH_CASE=text` only the cases
    // whose name contains it.
    let fixed: Option<u64> = std::env::var("HOOP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok());
    let only = std::env::var("HOOP_BENCH_CASE").unwrap_or_default();
    let run = |name: &str, bytes: usize, f: &mut dyn FnMut() -> usize| {
        let (Some(start), mut rounds) = (thread_cpu_seconds(), 0u64) else {
            return;
        };
        if !name.contains(only.as_str()) {
            return;
        }
        let mut spent = 0.0;
        while fixed.map_or(spent < 2.0, |n| rounds < n) {
            black_box(f());
            rounds += 1;
            spent = thread_cpu_seconds().unwrap_or(start + 2.0) - start;
        }
        let gbps = (rounds as f64 * bytes as f64) / spent / 1e9;
        eprintln!(
            "cpu-time {name:<32} {gbps:6.3} GB/s ({rounds} rounds of {bytes} bytes in {spent:.2} CPU s)"
        );
    };
    run("masking/default_entities", corpus.bytes, &mut || {
        mask_all(&mut masker, &plan, &corpus)
    });
    run("masking/naive_regex_alternation", corpus.bytes, &mut || {
        naive_count(&naive, &corpus)
    });
    for kind in [
        "names",
        "free_text",
        "numbers",
        "timestamps",
        "emails",
        "text_with_entities",
    ] {
        let cells: Vec<Vec<u8>> = corpus
            .cells
            .iter()
            .zip(&corpus.kinds)
            .filter(|(_, k)| **k == kind)
            .map(|(c, _)| c.clone())
            .collect();
        let part = Corpus {
            bytes: cells.iter().map(Vec::len).sum(),
            kinds: vec![kind; cells.len()],
            cells,
            expected: [0; 5],
        };
        run(&format!("masking_by_kind/{kind}"), part.bytes, &mut || {
            mask_all(&mut masker, &plan, &part)
        });
    }
}

fn bench_recording(c: &mut Criterion) {
    // pgbench's statements as its simple protocol sends them (literal values).
    let pgbench = [
        "BEGIN;",
        "UPDATE pgbench_accounts SET abalance = abalance + -3201 WHERE aid = 38512;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 38512;",
        "UPDATE pgbench_tellers SET tbalance = tbalance + -3201 WHERE tid = 7;",
        "UPDATE pgbench_branches SET bbalance = bbalance + -3201 WHERE bid = 1;",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 38512, -3201, CURRENT_TIMESTAMP);",
        "END;",
    ];
    let password = "ALTER USER bob PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy'";
    let policy = CompiledPolicy::default();
    let mut masker = policy.masker();
    for sql in pgbench {
        assert!(matches!(
            redact_credentials(sql, Dialect::PostgreSql),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(matches!(
            masker.mask_text(sql),
            std::borrow::Cow::Borrowed(_)
        ));
    }
    assert_eq!(
        redact_credentials(password, Dialect::PostgreSql),
        "ALTER USER bob PASSWORD '[REDACTED:PASSWORD]'"
    );
    let mut g = c.benchmark_group("recording");
    // Per iteration: the seven statements of one pgbench transaction.
    g.throughput(Throughput::Elements(pgbench.len() as u64));
    g.bench_function("redact_credentials_pgbench_tpcb", |b| {
        b.iter(|| {
            pgbench
                .iter()
                .map(|sql| redact_credentials(black_box(sql), Dialect::PostgreSql).len())
                .sum::<usize>()
        })
    });
    g.bench_function("mask_text_pgbench_tpcb", |b| {
        b.iter(|| {
            pgbench
                .iter()
                .map(|sql| masker.mask_text(black_box(sql)).len())
                .sum::<usize>()
        })
    });
    g.bench_function("naive_copy_pgbench_tpcb", |b| {
        b.iter(|| {
            pgbench
                .iter()
                .map(|sql| black_box(sql).to_string().len())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("redact_credentials_alter_user_password", |b| {
        b.iter(|| redact_credentials(black_box(password), Dialect::PostgreSql).len())
    });
    g.finish();
}

fn bench_cpu_time(_: &mut Criterion) {
    cpu_time_report();
}

mod group {
    // criterion_group! defines an undocumented public function.
    #![allow(missing_docs)]
    use super::{bench_cpu_time, bench_guardrails, bench_masking, bench_recording, bench_scaling};
    criterion::criterion_group!(
        benches,
        bench_masking,
        bench_scaling,
        bench_guardrails,
        bench_recording,
        bench_cpu_time
    );
}
criterion_main!(group::benches);
