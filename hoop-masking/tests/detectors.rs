//! Each built-in detector: what it masks, and look-alikes it leaves alone.

use hoop_masking::{CellOutcome, ColumnInfo, CompiledPolicy, Policy, ValueKind};

fn mask_in(policy: &CompiledPolicy, column: &str, cell: &str) -> Option<String> {
    let plan = policy.plan(&[ColumnInfo::new(column, ValueKind::Text)]);
    let mut masker = policy.masker();
    let mut out = Vec::new();
    match masker.mask_cell(&plan, 0, cell.as_bytes(), &mut out) {
        CellOutcome::Unchanged => {
            assert!(out.is_empty());
            Some(cell.to_owned())
        }
        CellOutcome::Replaced => Some(String::from_utf8(out).unwrap()),
        CellOutcome::Null => None,
    }
}

fn mask(cell: &str) -> String {
    mask_in(&CompiledPolicy::default(), "note", cell).unwrap()
}

struct Case {
    input: &'static str,
    output: &'static str,
}

fn check(cases: &[Case]) {
    for c in cases {
        assert_eq!(mask(c.input), c.output, "input: {:?}", c.input);
    }
}

#[test]
fn masks_email_addresses() {
    check(&[
        Case {
            input: "alice@example.com",
            output: "[REDACTED:EMAIL_ADDRESS]",
        },
        Case {
            input: "write to bob.smith+tag@mail.example.co.uk.",
            output: "write to [REDACTED:EMAIL_ADDRESS].",
        },
        Case {
            input: "a@b and c@d.e",
            output: "a@b and c@d.e",
        },
        Case {
            input: "x@y.com,z@w.org",
            output: "[REDACTED:EMAIL_ADDRESS],[REDACTED:EMAIL_ADDRESS]",
        },
    ]);
}

#[test]
fn masks_luhn_valid_cards_in_every_grouping() {
    check(&[
        Case {
            input: "4111111111111111",
            output: "[REDACTED:CREDIT_CARD_NUMBER]",
        },
        Case {
            input: "card 4111 1111 1111 1111 exp 12/29",
            output: "card [REDACTED:CREDIT_CARD_NUMBER] exp 12/29",
        },
        Case {
            input: "5555-5555-5555-4444",
            output: "[REDACTED:CREDIT_CARD_NUMBER]",
        },
        Case {
            input: "amex 3782 822463 10005",
            output: "amex [REDACTED:CREDIT_CARD_NUMBER]",
        },
    ]);
}

#[test]
fn does_not_mask_luhn_invalid_card() {
    check(&[
        Case {
            input: "4111111111111112",
            output: "4111111111111112",
        },
        Case {
            input: "order 4111 1111 1111 1112",
            output: "order 4111 1111 1111 1112",
        },
        Case {
            input: "0000000000000000",
            output: "0000000000000000",
        },
        Case {
            input: "x4111111111111111",
            output: "x4111111111111111",
        },
    ]);
}

#[test]
fn masks_valid_ssns_only() {
    check(&[
        Case {
            input: "SSN 123-45-6789",
            output: "SSN [REDACTED:US_SOCIAL_SECURITY_NUMBER]",
        },
        Case {
            input: "123 45 6789",
            output: "[REDACTED:US_SOCIAL_SECURITY_NUMBER]",
        },
        Case {
            input: "000-12-3456",
            output: "000-12-3456",
        },
        Case {
            input: "666-12-3456",
            output: "666-12-3456",
        },
        Case {
            input: "912-12-3456",
            output: "912-12-3456",
        },
        Case {
            input: "123-00-4567",
            output: "123-00-4567",
        },
        Case {
            input: "123-45-0000",
            output: "123-45-0000",
        },
        Case {
            input: "123-45 6789",
            output: "123-45 6789",
        },
    ]);
}

#[test]
fn masks_phone_numbers_but_not_timestamps() {
    check(&[
        Case {
            input: "call (555) 234-5678",
            output: "call [REDACTED:PHONE_NUMBER]",
        },
        Case {
            input: "555-123-4567",
            output: "[REDACTED:PHONE_NUMBER]",
        },
        Case {
            input: "+1 555 234 5678",
            output: "[REDACTED:PHONE_NUMBER]",
        },
        Case {
            input: "1-555-234-5678",
            output: "[REDACTED:PHONE_NUMBER]",
        },
        Case {
            input: "London +44 20 7946 0958",
            output: "London [REDACTED:PHONE_NUMBER]",
        },
        Case {
            input: "2024-01-05 10:22:33.123456+00",
            output: "2024-01-05 10:22:33.123456+00",
        },
        Case {
            input: "155-234-5678",
            output: "155-234-5678",
        },
    ]);
}

#[test]
fn masks_valid_ip_addresses_only() {
    check(&[
        Case {
            input: "from 192.168.10.4 at noon",
            output: "from [REDACTED:IP_ADDRESS] at noon",
        },
        Case {
            input: "999.1.1.1",
            output: "999.1.1.1",
        },
        Case {
            input: "version 1.2.3.4.5",
            output: "version 1.2.3.4.5",
        },
        Case {
            input: "host 2001:db8::ff00:42:8329 up",
            output: "host [REDACTED:IP_ADDRESS] up",
        },
        Case {
            input: "fe80::1",
            output: "[REDACTED:IP_ADDRESS]",
        },
        Case {
            input: "at 10:22:33",
            output: "at 10:22:33",
        },
        Case {
            input: "std::abs",
            output: "std::abs",
        },
    ]);
}

#[test]
fn masks_ibans_with_a_valid_checksum() {
    check(&[
        Case {
            input: "IBAN GB29 NWBK 6016 1331 9268 19",
            output: "IBAN [REDACTED:IBAN_CODE]",
        },
        Case {
            input: "DE89370400440532013000",
            output: "[REDACTED:IBAN_CODE]",
        },
        Case {
            input: "DE89370400440532013001",
            output: "DE89370400440532013001",
        },
    ]);
}

#[test]
fn masks_mac_addresses() {
    check(&[
        Case {
            input: "nic 00:1A:2B:3C:4D:5E",
            output: "nic [REDACTED:MAC_ADDRESS]",
        },
        Case {
            input: "00-1a-2b-3c-4d-5e",
            output: "[REDACTED:MAC_ADDRESS]",
        },
        Case {
            input: "00:1A:2B-3C:4D:5E",
            output: "00:1A:2B-3C:4D:5E",
        },
    ]);
}

#[test]
fn masks_secrets() {
    check(&[
        Case {
            input: "key AKIAIOSFODNN7EXAMPLE",
            output: "key [REDACTED:AWS_ACCESS_KEY]",
        },
        Case {
            input: "AKIAIOSFODNN7EXAMPL",
            output: "AKIAIOSFODNN7EXAMPL",
        },
        Case {
            input: "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end",
            output: "tok [REDACTED:JWT] end",
        },
        Case {
            input: "Authorization: Bearer abcdef0123456789abcdef",
            output: "Authorization: Bearer [REDACTED:BEARER_TOKEN]",
        },
        Case {
            input: "bearer short",
            output: "bearer short",
        },
        Case {
            input: "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter",
            output: "[REDACTED:PRIVATE_KEY]\nafter",
        },
        Case {
            input: "-----BEGIN CERTIFICATE-----\nMIIB\n",
            output: "-----BEGIN CERTIFICATE-----\nMIIB\n",
        },
    ]);
}

#[test]
fn masks_passport_numbers_only_with_context() {
    check(&[
        Case {
            input: "passport no. 123456789",
            output: "passport no. [REDACTED:US_PASSPORT]",
        },
        Case {
            input: "Passport: C12345678",
            output: "Passport: [REDACTED:US_PASSPORT]",
        },
        Case {
            input: "id 123456789",
            output: "id 123456789",
        },
    ]);
    let policy = CompiledPolicy::default();
    assert_eq!(
        mask_in(&policy, "passport_number", "123456789").unwrap(),
        "[REDACTED:US_PASSPORT]"
    );
}

#[test]
fn masks_dates_only_in_birth_date_columns() {
    let policy = CompiledPolicy::default();
    assert_eq!(
        mask_in(&policy, "dob", "1990-05-17").unwrap(),
        "[REDACTED:DATE_OF_BIRTH]"
    );
    assert_eq!(
        mask_in(&policy, "birth_date", "05/17/1990").unwrap(),
        "[REDACTED:DATE_OF_BIRTH]"
    );
    assert_eq!(
        mask_in(&policy, "DateOfBirth", "17.05.1990").unwrap(),
        "[REDACTED:DATE_OF_BIRTH]"
    );
    assert_eq!(mask_in(&policy, "dob", "1990-13-17").unwrap(), "1990-13-17");
    assert_eq!(
        mask_in(&policy, "created_at", "1990-05-17").unwrap(),
        "1990-05-17"
    );
}

#[test]
fn masks_urls_only_when_enabled() {
    assert_eq!(
        mask("see https://example.com/a?b=c."),
        "see https://example.com/a?b=c."
    );
    let policy = Policy::from_json(r#"{"masking": {"entities": ["URL"]}}"#)
        .unwrap()
        .compile()
        .unwrap();
    assert_eq!(
        mask_in(&policy, "n", "see https://example.com/a?b=c.").unwrap(),
        "see [REDACTED:URL]."
    );
    assert_eq!(
        mask_in(&policy, "n", "www.example.org").unwrap(),
        "[REDACTED:URL]"
    );
}

#[test]
fn leaves_ordinary_cells_untouched() {
    for cell in [
        "Alice Johnson",
        "Customer asked about the new plan and will call back later.",
        "12345",
        "3.14159",
        "2024-01-05",
        "2024-01-05 10:22:33+00",
        "",
        "naïve café — résumé",
    ] {
        assert_eq!(mask(cell), cell);
    }
}

#[test]
fn masks_every_entity_in_free_text() {
    assert_eq!(
        mask(
            "Jane (jane.doe@example.com, 555-867-5309) paid with 4111 1111 1111 1111 from 10.0.0.7"
        ),
        "Jane ([REDACTED:EMAIL_ADDRESS], [REDACTED:PHONE_NUMBER]) paid with [REDACTED:CREDIT_CARD_NUMBER] from [REDACTED:IP_ADDRESS]"
    );
}

#[test]
fn finds_secrets_and_entities_at_every_offset_and_cell_length() {
    // The gate reads cells in 32-byte chunks (the last one overlapping) or 16-byte halves:
    // a value must be found wherever the chunk borders fall.
    let cases = [
        (
            "Bearer abcdefghijklmnop1234",
            "Bearer [REDACTED:BEARER_TOKEN]",
        ),
        ("AKIAIOSFODNN7EXAMPLE", "[REDACTED:AWS_ACCESS_KEY]"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            "[REDACTED:JWT]",
        ),
        ("a@example.com", "[REDACTED:EMAIL_ADDRESS]"),
        ("4111 1111 1111 1111", "[REDACTED:CREDIT_CARD_NUMBER]"),
        ("10.0.0.1", "[REDACTED:IP_ADDRESS]"),
    ];
    for (value, masked) in cases {
        for before in 0..40 {
            for after in [0, 1, 7, 20, 33] {
                let prefix = if before == 0 {
                    String::new()
                } else {
                    format!("{} ", &"abcdefg ".repeat(5)[..before])
                };
                let cell = format!("{prefix}{value}{}", " y".repeat(after));
                let want = format!("{prefix}{masked}{}", " y".repeat(after));
                assert_eq!(mask(&cell), want, "cell {cell:?}");
            }
        }
    }
}
