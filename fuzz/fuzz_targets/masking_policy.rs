//! Arbitrary policies and cells through the masker and the guardrails.
//!
//! Input layout: the first bytes choose the policy (entities, transforms, a column rule, a
//! custom word list and regex cut from the input, guardrail rules); the rest, split at
//! 0xFF, are cells. Invariants: nothing panics; `detect` and `mask_cell` agree on whether a
//! cell is touched; no value the matcher reports as detected appears in the masked output,
//! nor in a structured value's text part (`mask_part`), which alone is ever replaced.

#![no_main]

use hoop_masking::{
    CellOutcome, ColumnAction, ColumnInfo, ColumnRule, CompiledPolicy, CustomEntity, Dialect,
    EntityType, InputRule, OutputRule, Policy, StatementKind, Transform, ValueKind,
};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static CACHE: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Option<CompiledPolicy>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn transform(b: u8, text: &str) -> Transform {
    match b % 6 {
        0 => Transform::Redact,
        1 => Transform::Mask {
            keep_last: usize::from(b / 6 % 8),
            char: if b & 0x80 != 0 { '•' } else { '*' },
        },
        2 => Transform::HmacSha256 {
            key: format!("k{b}"),
        },
        3 => Transform::Null,
        4 => Transform::Fixed {
            value: text.chars().take(12).collect(),
        },
        _ => Transform::Redact,
    }
}

/// A short piece of the input as text (lossy), for words, regexes and fixed values.
fn piece(data: &mut &[u8], max: usize) -> String {
    let n = data.first().map_or(0, |&b| usize::from(b) % (max + 1));
    let take = n.min(data.len().saturating_sub(1));
    let s = String::from_utf8_lossy(data.get(1..1 + take).unwrap_or_default()).into_owned();
    *data = data.get(1 + take..).unwrap_or_default();
    s
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 8 {
        return;
    }
    let (head, mut rest) = input.split_at(8);
    let mask = u16::from_le_bytes([head[0], head[1]]);
    let entities: Vec<EntityType> = EntityType::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, e)| *e)
        .collect();
    let word = piece(&mut rest, 12);
    let regex = piece(&mut rest, 16);
    let fixed = piece(&mut rest, 12);

    let mut policy = Policy::default();
    policy.masking.entities = entities;
    // Sometimes a tiny cell limit, so cells take the whole-cell rule.
    if mask & 0x8000 != 0 {
        policy.masking.max_cell_bytes = 16;
    }
    policy.masking.transform = transform(head[2], &fixed);
    if head[3] & 1 != 0 {
        policy
            .masking
            .transforms
            .insert("EMAIL_ADDRESS".into(), transform(head[3] >> 1, &fixed));
    }
    if head[4] & 1 != 0 && !word.trim().is_empty() {
        policy.masking.custom_entities.push(CustomEntity {
            name: "WORD".into(),
            regex: None,
            words: vec![word.clone()],
            transform: Some(transform(head[4] >> 1, &fixed)),
        });
    }
    if head[4] & 2 != 0 && !regex.is_empty() {
        policy.masking.custom_entities.push(CustomEntity {
            name: "PATTERN".into(),
            regex: Some(regex.clone()),
            words: Vec::new(),
            transform: None,
        });
    }
    if head[5] & 1 != 0 {
        policy.masking.columns.push(ColumnRule {
            columns: vec!["*.secret".into()],
            action: if head[5] & 2 != 0 {
                ColumnAction::Exempt
            } else {
                ColumnAction::Mask
            },
            transform: Some(transform(head[5] >> 2, &fixed)),
            entity: None,
        });
    }
    let g = &mut policy.guardrails;
    if head[6] & 1 != 0 && !word.trim().is_empty() {
        g.input.push(InputRule::DenyWordsList {
            words: vec![word.clone()],
            message: None,
            name: None,
            check_parameters: true,
        });
        g.output.push(OutputRule::DenyWordsList {
            words: vec![word],
            message: None,
            name: None,
        });
    }
    if head[6] & 2 != 0 {
        g.input.push(InputRule::PatternMatch {
            pattern_regex: regex,
            message: None,
            name: None,
            check_parameters: false,
        });
    }
    if head[6] & 4 != 0 {
        g.input.push(InputRule::DenyWithoutWhere {
            statements: vec![StatementKind::Update, StatementKind::Delete],
            message: None,
            name: None,
            allow_unparseable: head[6] & 8 != 0,
        });
        g.input.push(InputRule::DenyTables {
            tables: vec!["secrets".into()],
            message: None,
            name: None,
            allow_unparseable: true,
        });
        g.input.push(InputRule::DenyMultipleStatements {
            message: None,
            name: None,
            allow_unparseable: true,
        });
    }
    // Invalid regexes and empty names are errors, not panics. Compiling dominates an
    // iteration, so compiled policies are kept per policy bytes (a bounded cache): the
    // fuzzer then spends its time on cells.
    let key = input[..input.len() - rest.len()].to_vec();
    let compiled = CACHE.with_borrow_mut(|cache| {
        if cache.len() > 256 {
            cache.clear();
        }
        cache
            .entry(key)
            .or_insert_with(|| policy.compile().ok())
            .clone()
    });
    let Some(policy) = compiled else {
        return;
    };

    let kinds = [
        ValueKind::Text,
        ValueKind::TypedText,
        ValueKind::Binary,
        ValueKind::Structured,
    ];
    let columns = [
        ColumnInfo::new("note", kinds[usize::from(head[7] % 4)]),
        ColumnInfo::new("secret", ValueKind::Text).in_table("t"),
        ColumnInfo::new("dob", ValueKind::Text),
        ColumnInfo::new("passport", ValueKind::TypedText).with_substitute(b"0"),
    ];
    let plan = policy.plan(&columns);
    let mut masker = policy.masker();
    let mut out = Vec::new();
    for (n, cell) in rest.split(|&b| b == 0xFF).enumerate() {
        let column = (n + usize::from(head[7] / 4)) % columns.len();
        let detected: Vec<Vec<u8>> = masker
            .detect(&plan, column, cell)
            .iter()
            .map(|d| cell[d.start..d.end].to_vec())
            .collect();
        out.clear();
        match masker.mask_cell(&plan, column, cell, &mut out) {
            CellOutcome::Unchanged => assert!(detected.is_empty(), "detections but unchanged"),
            CellOutcome::Null => assert!(!detected.is_empty() || cell.is_empty()),
            CellOutcome::Replaced => {
                assert!(
                    !detected.is_empty() || cell.is_empty(),
                    "replaced without detections"
                );
                // A whole-column mask with a fixed value the column already holds is the
                // operator's choice; every detection by the scanner must be gone.
                if plan.treatment(column) == hoop_masking::ColumnTreatment::Scanned {
                    for v in detected.iter().filter(|v| !v.is_empty()) {
                        assert!(
                            !out.windows(v.len()).any(|w| w == v.as_slice()),
                            "detected value survived masking"
                        );
                    }
                }
            }
        }
        // The same cell as a part of a structured value, each kind: a text part keeps no
        // detected value either.
        for kind in kinds {
            out.clear();
            if masker.mask_part(&plan, column, cell, kind, &mut out) == CellOutcome::Replaced {
                assert_eq!(kind, ValueKind::Text, "only text parts are replaced");
                for v in detected.iter().filter(|v| !v.is_empty()) {
                    assert!(
                        !out.windows(v.len()).any(|w| w == v.as_slice()),
                        "detected value survived in a part"
                    );
                }
            }
        }
        if let Ok(sql) = std::str::from_utf8(cell) {
            let _ = policy.check_statement(
                sql,
                if n % 2 == 0 {
                    Dialect::PostgreSql
                } else {
                    Dialect::MySql
                },
            );
        }
        let _ = policy.check_parameter(cell);
        let _ = policy.check_row([Some(cell), None]);
    }
    let _ = masker.counts().count();
});
