//! Compiled transforms: what a masked value becomes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::policy::Transform;

#[derive(Clone)]
pub(crate) enum CompiledTransform {
    Redact,
    Mask { keep_last: usize, char: char },
    // Keyed once at compile time; each use clones the keyed state (no re-keying).
    Hmac(Box<Hmac<Sha256>>),
    Null,
    Fixed(Box<[u8]>),
}

impl std::fmt::Debug for CompiledTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redact => f.write_str("Redact"),
            Self::Mask { keep_last, char } => write!(f, "Mask({keep_last}, {char:?})"),
            Self::Hmac(_) => f.write_str("HmacSha256(<key hidden>)"),
            Self::Null => f.write_str("Null"),
            Self::Fixed(v) => write!(f, "Fixed({} bytes)", v.len()),
        }
    }
}

impl CompiledTransform {
    /// `None` for an HMAC transform with an empty key (the caller reports where).
    pub(crate) fn new(t: &Transform) -> Option<Self> {
        Some(match t {
            Transform::Redact => Self::Redact,
            Transform::Mask { keep_last, char } => Self::Mask {
                keep_last: *keep_last,
                char: *char,
            },
            Transform::HmacSha256 { key } => {
                if key.is_empty() {
                    return None;
                }
                Self::Hmac(Box::new(
                    Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?,
                ))
            }
            Transform::Null => Self::Null,
            Transform::Fixed { value } => Self::Fixed(value.as_bytes().into()),
        })
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Appends what `value` becomes. `label` is `[REDACTED:<ENTITY>]`. Not called for
    /// [`CompiledTransform::Null`], which the caller turns into a NULL cell.
    pub(crate) fn apply(&self, label: &[u8], value: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Redact | Self::Null => out.extend_from_slice(label),
            Self::Mask { keep_last, char } => mask(value, *keep_last, *char, out),
            Self::Hmac(mac) => {
                let mut mac = (**mac).clone();
                mac.update(value);
                let digest = mac.finalize().into_bytes();
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for b in digest {
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
            }
            Self::Fixed(v) => out.extend_from_slice(v),
        }
    }
}

/// Replaces each character (UTF-8 aware; each byte if `value` is not UTF-8) with `char`,
/// keeping the last `keep_last`, but never more than half of them.
fn mask(value: &[u8], keep_last: usize, char: char, out: &mut Vec<u8>) {
    let mut buf = [0u8; 4];
    let fill = char.encode_utf8(&mut buf).as_bytes();
    let (count, keep, keep_from) = match std::str::from_utf8(value) {
        Ok(s) => {
            let count = s.chars().count();
            let keep = keep_last.min(count / 2);
            let from = s
                .char_indices()
                .nth(count - keep)
                .map_or(s.len(), |(i, _)| i);
            (count, keep, from)
        }
        Err(_) => {
            let keep = keep_last.min(value.len() / 2);
            (value.len(), keep, value.len() - keep)
        }
    };
    for _ in 0..count - keep {
        out.extend_from_slice(fill);
    }
    out.extend_from_slice(&value[keep_from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &Transform, v: &str) -> String {
        let mut out = Vec::new();
        CompiledTransform::new(t)
            .unwrap()
            .apply(b"[REDACTED:X]", v.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mask_keeps_last_n_characters_but_never_more_than_half() {
        let t = Transform::Mask {
            keep_last: 4,
            char: '*',
        };
        assert_eq!(run(&t, "4111111111111111"), "************1111");
        assert_eq!(run(&t, "abc"), "**c");
        assert_eq!(run(&t, "zoë@x.io"), "****x.io");
        assert_eq!(
            run(
                &Transform::Mask {
                    keep_last: 2,
                    char: '•'
                },
                "ëëë"
            ),
            "••ë"
        );
    }

    #[test]
    fn hmac_is_stable_per_key_and_differs_across_keys() {
        let a = Transform::HmacSha256 { key: "k1".into() };
        let b = Transform::HmacSha256 { key: "k2".into() };
        assert_eq!(run(&a, "alice@example.com"), run(&a, "alice@example.com"));
        assert_ne!(run(&a, "alice@example.com"), run(&b, "alice@example.com"));
        assert_eq!(run(&a, "x").len(), 64);
    }
}
