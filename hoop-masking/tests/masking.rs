//! Column rules, value kinds, transforms, custom entities and counts through `mask_cell`.

use hoop_masking::{CellOutcome, ColumnInfo, ColumnTreatment, CompiledPolicy, Policy, ValueKind};

fn compile(json: &str) -> CompiledPolicy {
    Policy::from_json(json).unwrap().compile().unwrap()
}

/// Masks `cell` in column `index` of `columns`; `None` for NULL.
fn run(
    policy: &CompiledPolicy,
    columns: &[ColumnInfo<'_>],
    index: usize,
    cell: &str,
) -> Option<String> {
    let plan = policy.plan(columns);
    let mut masker = policy.masker();
    let mut out = b"prefix:".to_vec();
    match masker.mask_cell(&plan, index, cell.as_bytes(), &mut out) {
        CellOutcome::Unchanged => {
            assert_eq!(out, b"prefix:", "unchanged cells leave the buffer alone");
            Some(cell.to_owned())
        }
        CellOutcome::Replaced => Some(String::from_utf8(out[7..].to_vec()).unwrap()),
        CellOutcome::Null => None,
    }
}

#[test]
fn column_rules_mask_whole_columns_and_first_match_wins() {
    let p = compile(
        r#"{"masking": {"columns": [
            {"columns": ["audit.*"], "action": "exempt"},
            {"columns": ["*.ssn"], "entity": "US_SOCIAL_SECURITY_NUMBER", "transform": {"type": "mask", "keep_last": 4}},
            {"columns": ["users.email"]}
        ]}}"#,
    );
    let cols = [
        ColumnInfo::new("ssn", ValueKind::Text).in_table("public.people"),
        ColumnInfo::new("email", ValueKind::Text).in_table("users"),
        ColumnInfo::new("ssn", ValueKind::Text).in_table("audit"),
        ColumnInfo::new("email", ValueKind::Text),
    ];
    assert_eq!(
        run(&p, &cols, 0, "not even an ssn").unwrap(),
        "*********** ssn"
    );
    assert_eq!(run(&p, &cols, 1, "anything").unwrap(), "[REDACTED:COLUMN]");
    // Exempt: not scanned at all.
    assert_eq!(run(&p, &cols, 2, "123-45-6789").unwrap(), "123-45-6789");
    // Table unknown: `users.email` does not apply, the scanner does.
    assert_eq!(run(&p, &cols, 3, "plain").unwrap(), "plain");
    let plan = p.plan(&cols);
    assert_eq!(plan.treatment(2), ColumnTreatment::Untouched);
    assert_eq!(plan.treatment(3), ColumnTreatment::Scanned);
    assert!(matches!(plan.treatment(0), ColumnTreatment::Masked(_)));
}

#[test]
fn binary_cells_never_receive_text() {
    let p = compile(r#"{"masking": {"columns": [{"columns": ["*.ssn"]}]}}"#);
    let cols = [
        ColumnInfo::new("ssn", ValueKind::Binary).in_table("t"),
        ColumnInfo::new("ssn", ValueKind::Binary)
            .in_table("t")
            .with_substitute(&[0, 0, 0, 0]),
        ColumnInfo::new("blob", ValueKind::Binary),
        ColumnInfo::new("dob", ValueKind::Binary),
    ];
    assert_eq!(run(&p, &cols, 0, "\u{1}\u{2}\u{3}\u{4}"), None);
    assert_eq!(
        run(&p, &cols, 1, "\u{1}\u{2}\u{3}\u{4}").unwrap(),
        "\0\0\0\0"
    );
    // Not scanned: opaque bytes that happen to look like an email stay.
    assert_eq!(run(&p, &cols, 2, "a@example.com").unwrap(), "a@example.com");
    // A birth-date column in binary is masked whole.
    assert_eq!(run(&p, &cols, 3, "\u{0}\u{0}\u{1}\u{2}"), None);
}

#[test]
fn typed_text_cells_become_substitute_or_null() {
    let p = CompiledPolicy::default();
    let cols = [
        ColumnInfo::new("addr", ValueKind::TypedText),
        ColumnInfo::new("card", ValueKind::TypedText).with_substitute(b"0"),
    ];
    assert_eq!(run(&p, &cols, 0, "10.1.2.3"), None);
    assert_eq!(run(&p, &cols, 0, "12345").unwrap(), "12345");
    assert_eq!(run(&p, &cols, 1, "4111111111111111").unwrap(), "0");
}

#[test]
fn transforms_per_entity() {
    let p = compile(
        r#"{"masking": {"transforms": {
            "CREDIT_CARD_NUMBER": {"type": "mask", "keep_last": 4},
            "EMAIL_ADDRESS": {"type": "hmac_sha256", "key": "k"},
            "IP_ADDRESS": {"type": "fixed", "value": "0.0.0.0"},
            "US_SOCIAL_SECURITY_NUMBER": {"type": "null"}
        }}}"#,
    );
    let cols = [ColumnInfo::new("note", ValueKind::Text)];
    assert_eq!(
        run(&p, &cols, 0, "card 4111-1111-1111-1111.").unwrap(),
        "card ***************1111."
    );
    let a = run(&p, &cols, 0, "from a@example.com").unwrap();
    let b = run(&p, &cols, 0, "to a@example.com!").unwrap();
    assert_eq!(a[5..], b[3..b.len() - 1], "hash is stable across cells");
    assert_eq!(a.len(), 5 + 64);
    assert_eq!(run(&p, &cols, 0, "ip 10.9.8.7").unwrap(), "ip 0.0.0.0");
    assert_eq!(run(&p, &cols, 0, "ssn 123-45-6789 here"), None);
}

#[test]
fn a_transform_that_would_leave_the_value_visible_redacts_the_cell() {
    let p = compile(
        r#"{"masking": {"transforms": {"EMAIL_ADDRESS": {"type": "fixed", "value": "x@example.com"}}}}"#,
    );
    let cols = [ColumnInfo::new("note", ValueKind::Text)];
    assert_eq!(run(&p, &cols, 0, "y@example.com").unwrap(), "x@example.com");
    assert_eq!(
        run(&p, &cols, 0, "x@example.com").unwrap(),
        "[REDACTED:EMAIL_ADDRESS]"
    );
    // The same card twice, once where its context hides it from the detector.
    let d = CompiledPolicy::default();
    assert_eq!(
        run(&d, &cols, 0, "4111111111111111 94111111111111111").unwrap(),
        "[REDACTED:CREDIT_CARD_NUMBER]"
    );
}

#[test]
fn custom_entities_from_regex_and_words() {
    let p = compile(
        r#"{"masking": {"entities": [], "custom_entities": [
            {"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"},
            {"name": "CODENAME", "words": ["bluebird", "night owl"], "transform": {"type": "mask"}}
        ]}}"#,
    );
    let cols = [ColumnInfo::new("note", ValueKind::Text)];
    assert_eq!(
        run(&p, &cols, 0, "EMP-123456 on Bluebird").unwrap(),
        "[REDACTED:EMPLOYEE_ID] on ********"
    );
    assert_eq!(
        run(&p, &cols, 0, "project NIGHT OWL.").unwrap(),
        "project *********."
    );
    assert_eq!(
        run(&p, &cols, 0, "bluebirds and a@example.com").unwrap(),
        "bluebirds and a@example.com"
    );
}

#[test]
fn counts_what_was_masked_per_entity() {
    let p = compile(
        r#"{"masking": {"columns": [{"columns": ["*.ssn"], "entity": "US_SOCIAL_SECURITY_NUMBER"}]}}"#,
    );
    let plan = p.plan(&[
        ColumnInfo::new("note", ValueKind::Text),
        ColumnInfo::new("ssn", ValueKind::Text).in_table("t"),
    ]);
    let mut m = p.masker();
    let mut out = Vec::new();
    for cell in ["a@example.com b@example.com", "nothing", "c@example.com"] {
        let _ = m.mask_cell(&plan, 0, cell.as_bytes(), &mut out);
    }
    let _ = m.mask_cell(&plan, 1, b"123-45-6789", &mut out);
    let counts: Vec<(String, u64)> = m.counts().map(|(_, n, c)| (n.to_owned(), c)).collect();
    assert_eq!(
        counts,
        [
            ("EMAIL_ADDRESS".to_owned(), 3),
            ("US_SOCIAL_SECURITY_NUMBER".to_owned(), 1)
        ]
    );
    m.reset_counts();
    assert_eq!(m.counts().count(), 0);
}

#[test]
fn detect_reports_what_mask_cell_masks() {
    let p = CompiledPolicy::default();
    let plan = p.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
    let mut m = p.masker();
    let cell = b"mail a@example.com from 10.0.0.1";
    let spans: Vec<(&str, &[u8])> = m
        .detect(&plan, 0, cell)
        .iter()
        .map(|d| (p.entity_name(d.entity), &cell[d.start..d.end]))
        .collect();
    assert_eq!(
        spans,
        [
            ("EMAIL_ADDRESS", &b"a@example.com"[..]),
            ("IP_ADDRESS", &b"10.0.0.1"[..])
        ]
    );
}

#[test]
fn compiled_policy_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<CompiledPolicy>();
    let p = CompiledPolicy::default();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                let plan = p.plan(&[ColumnInfo::new("n", ValueKind::Text)]);
                let mut out = Vec::new();
                p.masker().mask_cell(&plan, 0, b"a@example.com", &mut out)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), CellOutcome::Replaced);
    }
}

/// Issue 13, item 1: `select repeat('user@example.com ', 130000)` took 14-19 s of CPU, each
/// detection searching the whole output for its value. Every value is masked and counted,
/// none survives, with the limit raised past the cell's 2.2 MB (at the default limit the
/// cell would be masked whole); `benches/benches/masking.rs` (`masking_scaling`) shows the
/// cost per byte flat from 10 KB to 1 MB.
#[test]
fn a_cell_of_130000_repeated_emails_is_masked_value_by_value() {
    let p = compile(r#"{"masking": {"max_cell_bytes": 4194304}}"#);
    let cell = "user@example.com ".repeat(130_000);
    let plan = p.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
    let mut masker = p.masker();
    let mut out = Vec::new();
    assert_eq!(
        masker.mask_cell(&plan, 0, cell.as_bytes(), &mut out),
        CellOutcome::Replaced
    );
    assert_eq!(out, "[REDACTED:EMAIL_ADDRESS] ".repeat(130_000).as_bytes());
    assert_eq!(
        masker.counts().map(|(_, _, n)| n).collect::<Vec<_>>(),
        [130_000]
    );
}

/// More than a handful of values take the 4-gram filter's path: each distinct value is
/// masked, and a value repeated where its context hid it from the detector (a card
/// number inside a longer digit run) still makes the whole cell redacted.
#[test]
fn many_values_in_one_cell_are_masked_and_a_hidden_repeat_redacts_the_cell() {
    let p = CompiledPolicy::default();
    let cols = [ColumnInfo::new("note", ValueKind::Text)];
    let emails: Vec<String> = (0..40).map(|i| format!("user{i}@example.com")).collect();
    let cell = emails.join(", ");
    assert_eq!(
        run(&p, &cols, 0, &cell).unwrap(),
        vec!["[REDACTED:EMAIL_ADDRESS]"; 40].join(", ")
    );
    let cards = "4111111111111111 ".repeat(20);
    assert_eq!(
        run(&p, &cols, 0, &format!("{cards}and 94111111111111111")).unwrap(),
        "[REDACTED:CREDIT_CARD_NUMBER]"
    );
    // With a fixed replacement equal to one of many values: that value survives, so the
    // cell is redacted whole.
    let fixed = compile(
        r#"{"masking": {"transforms": {"EMAIL_ADDRESS": {"type": "fixed", "value": "user7@example.com"}}}}"#,
    );
    assert_eq!(
        run(&fixed, &cols, 0, &cell).unwrap(),
        "[REDACTED:EMAIL_ADDRESS]"
    );
}

/// `masking.max_cell_bytes`: a longer cell is masked whole by the first value the
/// detectors find (its label, or NULL or the substitute where text would not do), and one
/// with nothing to find passes unchanged: never unscanned.
#[test]
fn cells_past_max_cell_bytes_are_masked_whole_by_their_first_value() {
    assert_eq!(
        Policy::from_json("{}").unwrap().masking.max_cell_bytes,
        hoop_masking::DEFAULT_MAX_CELL_BYTES
    );
    let p = compile(r#"{"masking": {"max_cell_bytes": 64}}"#);
    let cols = [
        ColumnInfo::new("note", ValueKind::Text),
        ColumnInfo::new("addr", ValueKind::TypedText).with_substitute(b"0.0.0.0"),
        ColumnInfo::new("list", ValueKind::Structured),
    ];
    let prose = "the order shipped on time and the customer was happy with it, ";
    let long = format!("{prose}{prose}mail ada@example.com, card 4111111111111111");
    assert!(long.len() > 64);
    assert_eq!(
        run(&p, &cols, 0, &long).unwrap(),
        "[REDACTED:EMAIL_ADDRESS]"
    );
    assert_eq!(
        run(&p, &cols, 0, &format!("{prose}{prose}")).unwrap(),
        format!("{prose}{prose}")
    );
    assert_eq!(run(&p, &cols, 1, &long).unwrap(), "0.0.0.0");
    assert_eq!(run(&p, &cols, 2, &long), None);
    // At the limit, value by value.
    let short = "mail ada@example.com, card 4111111111111111";
    assert!(short.len() <= 64);
    assert_eq!(
        run(&p, &cols, 0, short).unwrap(),
        "mail [REDACTED:EMAIL_ADDRESS], card [REDACTED:CREDIT_CARD_NUMBER]"
    );
    // One value counted for the whole cell.
    let plan = p.plan(&cols);
    let mut masker = p.masker();
    let _ = masker.mask_cell(&plan, 0, long.as_bytes(), &mut Vec::new());
    assert_eq!(masker.counts().map(|(_, _, n)| n).sum::<u64>(), 1);
    // A null transform makes it NULL; text for the audit gets the label.
    let null = compile(
        r#"{"masking": {"max_cell_bytes": 64, "transforms": {"EMAIL_ADDRESS": {"type": "null"}}}}"#,
    );
    assert_eq!(run(&null, &cols, 0, &long), None);
    assert_eq!(masker.mask_text(&long), "[REDACTED:EMAIL_ADDRESS]");
    assert_eq!(
        masker.mask_text(&format!("{prose}{prose}")),
        format!("{prose}{prose}")
    );
}

/// Parts of a structured cell (array elements, record fields) are masked as their kind:
/// text in place, typed values to NULL; a column masked whole gives NULL parts and the
/// substitute or NULL for the cell; an exempt column is untouched.
#[test]
fn structured_parts_are_masked_as_their_kind() {
    let p = compile(
        r#"{"masking": {"columns": [{"columns": ["secret"]}, {"columns": ["audit"], "action": "exempt"}]}}"#,
    );
    let cols = [
        ColumnInfo::new("list", ValueKind::Structured),
        ColumnInfo::new("secret", ValueKind::Structured),
        ColumnInfo::new("audit", ValueKind::Structured),
        ColumnInfo::new("birth_dates", ValueKind::Structured),
    ];
    let plan = p.plan(&cols);
    let mut masker = p.masker();
    let mut out = Vec::new();
    let part = b"mail ada@example.com";
    assert_eq!(
        masker.mask_part(&plan, 0, part, ValueKind::Text, &mut out),
        CellOutcome::Replaced
    );
    assert_eq!(out, b"mail [REDACTED:EMAIL_ADDRESS]");
    for kind in [
        ValueKind::TypedText,
        ValueKind::Binary,
        ValueKind::Structured,
    ] {
        assert_eq!(
            masker.mask_part(&plan, 0, part, kind, &mut out),
            CellOutcome::Null,
            "{kind:?}"
        );
    }
    assert_eq!(
        masker.mask_part(&plan, 0, b"nothing here", ValueKind::TypedText, &mut out),
        CellOutcome::Unchanged
    );
    assert!(matches!(plan.treatment(1), ColumnTreatment::Masked(_)));
    assert_eq!(
        masker.mask_cell(&plan, 1, part, &mut out),
        CellOutcome::Null
    );
    assert_eq!(
        masker.mask_part(&plan, 1, b"x", ValueKind::Text, &mut out),
        CellOutcome::Null
    );
    assert_eq!(
        masker.mask_part(&plan, 2, part, ValueKind::Text, &mut out),
        CellOutcome::Unchanged
    );
    assert!(matches!(plan.treatment(3), ColumnTreatment::Masked(_)));
}
