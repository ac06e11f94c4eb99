//! One rule for each kind of name the API takes, used by every endpoint
//! that takes one, so a name refused in one place cannot be stored through
//! another.
//!
//! | kind | where | rule |
//! |---|---|---|
//! | identifier | connections, agents, resources, groups (also in `reviewers` and `access_control`) | `[A-Za-z0-9][A-Za-z0-9._-]{0,62}` |
//! | e-mail | users | `local@domain`, ASCII, at most 254 bytes (below) |
//! | label | guardrail names, token names, user names, tags, other plugin entries | 1 to 128 characters, no control or invisible characters, no space at either end |
//! | text | guardrail descriptions | at most 4096 characters; a label's characters plus newline and tab |
//!
//! Identifiers name things people type on command lines and in URLs: a
//! connection's name is the PostgreSQL user name of its sessions (at most
//! 63 bytes there), and it must not read as a path (`.`, `..`) or an option
//! (`-x`). Identifiers and e-mail addresses are unique regardless of case
//! (the store's indexes on `lower(...)`): `ADMIN` beside `admin` would make
//! two things that read as one. Nothing takes control characters: a NUL, an
//! escape sequence or a newline in a name reaches terminals (`hoop
//! sessions list`), logs and other tools; nor the invisible characters
//! that reorder or hide text (bidirectional controls, zero-width spaces).

use super::ApiError;

/// The longest identifier: PostgreSQL's limit on a user name, which
/// carries the connection's name on the listener.
const MAX_IDENTIFIER: usize = 63;

/// The longest label, in characters.
const MAX_LABEL: usize = 128;

/// The longest free text, in characters.
const MAX_TEXT: usize = 4096;

/// The longest e-mail address (RFC 5321's path limit less the brackets)
/// and local part.
const MAX_EMAIL: usize = 254;
const MAX_LOCAL_PART: usize = 64;

/// Characters that change how text around them is shown without showing
/// themselves: bidirectional overrides and isolates, zero-width spaces and
/// joiners, the byte-order mark, line and paragraph separators.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// A connection, agent, resource or group name.
///
/// # Errors
///
/// 422 naming `field`.
pub(crate) fn identifier(field: &str, value: &str) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let valid = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.len() <= MAX_IDENTIFIER
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

/// Each of a list of identifiers (groups), naming `field[N]`.
///
/// # Errors
///
/// 422 naming the first one refused.
pub(crate) fn identifiers(field: &str, values: &[String]) -> Result<(), ApiError> {
    for (index, value) in values.iter().enumerate() {
        identifier(&format!("{field}[{index}]"), value)?;
    }
    Ok(())
}

/// An e-mail address, in a subset every mail system takes: ASCII, one
/// `@`, a local part of letters, digits and ``.!#$%&'*+/=?^_`{|}~-``
/// (no dot at either end nor two in a row), a domain of dot-separated
/// labels of letters, digits and `-` (not at either end). A single label
/// is allowed (`admin@localhost`).
///
/// # Errors
///
/// 422 naming `field`.
pub(crate) fn email(field: &str, value: &str) -> Result<(), ApiError> {
    let refuse = || ApiError::invalid(field, "is not an e-mail address");
    if value.len() > MAX_EMAIL {
        return Err(refuse());
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err(refuse());
    };
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL_PART
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
    let domain_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// A short name people read: 1 to 128 characters, none of them control or
/// invisible, no white space at either end.
///
/// # Errors
///
/// 422 naming `field`.
pub(crate) fn label(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > MAX_LABEL {
        return Err(ApiError::invalid(field, "use 1 to 128 characters"));
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(ApiError::invalid(
            field,
            "must not start or end with white space",
        ));
    }
    printable(field, value, false)
}

/// Each of a list of labels, naming `field[N]`.
///
/// # Errors
///
/// 422 naming the first one refused.
pub(crate) fn labels(field: &str, values: &[String]) -> Result<(), ApiError> {
    for (index, value) in values.iter().enumerate() {
        label(&format!("{field}[{index}]"), value)?;
    }
    Ok(())
}

/// Free text (a description): at most 4096 characters; lines and tabs
/// are allowed, other control and invisible characters are not.
///
/// # Errors
///
/// 422 naming `field`.
pub(crate) fn text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid(field, "use at most 4096 characters"));
    }
    printable(field, value, true)
}

fn printable(field: &str, value: &str, lines: bool) -> Result<(), ApiError> {
    let refused = value
        .chars()
        .find(|&c| (c.is_control() && !(lines && matches!(c, '\n' | '\t'))) || is_invisible(c));
    match refused {
        Some(c) => Err(ApiError::invalid(
            field,
            format!(
                "must not contain control or invisible characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// `value` safe to record and show: control and invisible characters
/// escaped (`\n`, `\u{1b}`), at most 128 characters kept. For names a
/// client typed that matched nothing (a listener's user name), which the
/// records and messages still quote.
pub(crate) fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_LABEL));
    for (count, c) in value.chars().enumerate() {
        if count == MAX_LABEL {
            out.push_str("...");
            break;
        }
        if c.is_control() || is_invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_short_ascii_and_start_with_a_letter_or_digit() {
        for good in ["pg", "a", "billing-db.eu_1", "0", &"x".repeat(63)] {
            assert!(identifier("name", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-rf",
            "_x",
            "a b",
            "admin ",
            "a/b",
            "a\0",
            "a\u{1b}[31m",
            "a\n",
            "é",
            &"x".repeat(64),
        ] {
            assert_eq!(
                identifier("name", bad).unwrap_err().field(),
                Some("name"),
                "{bad:?}"
            );
        }
        let error = identifiers("groups", &["ok".into(), "no way".into()]).unwrap_err();
        assert_eq!(error.field(), Some("groups[1]"));
    }

    #[test]
    fn emails_are_a_sane_subset() {
        for good in ["admin@localhost", "a@b", "bob.o'neil+hoop@mail.example.com"] {
            assert!(email("email", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "nope",
            "@b",
            "a@",
            "a@@b",
            "a@b@c",
            ".a@b",
            "a.@b",
            "a..b@c",
            "a@-b",
            "a@b-",
            "a@b..c",
            "a b@c",
            "a\0@b",
            "a@b\n",
            "\u{1b}[2Ja@b",
            "é@b",
            &format!("{}@b", "x".repeat(65)),
            &format!("a@{}", "b.".repeat(130)),
        ] {
            assert!(email("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels_and_text_refuse_control_and_invisible_characters() {
        assert!(label("name", "Block DROP (prod) — ñ").is_ok());
        for bad in [
            "",
            " lead",
            "trail ",
            "nul\0",
            "esc\u{1b}",
            "line\n",
            "del\u{7f}",
            "c1\u{85}",
            "rlo\u{202e}",
            "zw\u{200b}",
            "bom\u{feff}",
            &"x".repeat(129),
        ] {
            assert!(label("name", bad).is_err(), "{bad:?}");
        }
        assert!(text("description", "two\nlines\tand a tab").is_ok());
        assert!(text("description", "").is_ok());
        assert!(text("description", "bell\u{7}").is_err());
        assert!(text("description", "cr\r").is_err());
    }

    #[test]
    fn quoted_names_show_their_control_characters_escaped() {
        assert_eq!(quoted("pg"), "pg");
        assert_eq!(quoted("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(quoted(&"x".repeat(200)).len(), 131);
    }
}
