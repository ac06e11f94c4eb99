//! Detectors triggered by a byte or a literal: emails, IPv6 and MAC addresses, secrets,
//! URLs, and the custom word lists and regexes.

use aho_corasick::AhoCorasick;
use regex_automata::{Anchored, Input, meta};

use super::{Detection, Literal, LiteralFinder, Matcher, Stop, ends_word, starts_word, validate};
use crate::entity::{EntityId, EntityType};

fn email_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'@')
}

/// Each `@` (memchr) opens a window over email characters; the email regex runs only
/// inside it.
pub(super) fn emails<S: Stop>(
    re: &meta::Regex,
    cache: &mut meta::Cache,
    cell: &[u8],
    id: EntityId,
    out: &mut Vec<Detection>,
) {
    let mut from = 0;
    while !S::reached(out)
        && let Some(off) = memchr::memchr(b'@', &cell[from..])
    {
        let at = from + off;
        let mut start = at;
        while start > 0 && email_byte(cell[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < cell.len() && email_byte(cell[end]) {
            end += 1;
        }
        // A local part cannot start with a dot: from the first other byte the match is
        // anchored, which spares the regex its reverse scan for the start.
        while start < at && cell[start] == b'.' {
            start += 1;
        }
        let mut input = Input::new(cell).range(start..end).anchored(Anchored::Yes);
        // The shortest address, `a@b.cd`, has six bytes; a window's tail shorter than that
        // (a sentence's full stop) needs no second search.
        while end - input.start() >= 6 {
            let found = match re.search_with(cache, &input) {
                None if input.get_anchored() == Anchored::Yes => {
                    input.set_anchored(Anchored::No);
                    re.search_with(cache, &input)
                }
                found => found,
            };
            let Some(m) = found.filter(|m| !m.is_empty()) else {
                break;
            };
            if validate::email(&cell[m.range()]) {
                out.push(Detection {
                    entity: id,
                    start: m.start(),
                    end: m.end(),
                });
            }
            input.set_start(m.end());
            input.set_anchored(Anchored::No);
        }
        from = end.max(at + 1);
    }
}

fn hex_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Windows around `:` (and `-` for MAC addresses) over hex digits: an IPv6 address if the
/// standard parser takes it, a MAC address if it is six hex pairs.
pub(super) fn hex_addresses<S: Stop>(
    m: &Matcher,
    cell: &[u8],
    colon: bool,
    dash: bool,
    out: &mut Vec<Detection>,
) {
    let ip = m.id(EntityType::IpAddress);
    let mac = m.id(EntityType::MacAddress);
    if colon {
        let mut from = 0;
        while !S::reached(out)
            && let Some(off) = memchr::memchr(b':', &cell[from..])
        {
            let p = from + off;
            let mut start = p;
            while start > 0 && hex_byte(cell[start - 1]) {
                start -= 1;
            }
            let mut end = p + 1;
            while end < cell.len() && hex_byte(cell[end]) {
                end += 1;
            }
            from = end;
            // A sentence may end right after the address.
            while end > start
                && matches!(cell[end - 1], b'.' | b':')
                && !cell[start..end].ends_with(b"::")
            {
                end -= 1;
            }
            while start < end && cell[start] == b'.' {
                start += 1;
            }
            if !starts_word(cell, start) || !ends_word(cell, end) {
                continue;
            }
            let text = &cell[start..end];
            if let Some(id) = mac
                && mac_shape(text, b':')
            {
                out.push(Detection {
                    entity: id,
                    start,
                    end,
                });
            } else if let Some(id) = ip
                && memchr::memchr_iter(b':', text).count() >= 2
                && validate::ipv6(text)
            {
                out.push(Detection {
                    entity: id,
                    start,
                    end,
                });
            }
        }
    }
    if let Some(id) = mac.filter(|_| dash) {
        let mut from = 0;
        while !S::reached(out)
            && let Some(off) = memchr::memchr(b'-', &cell[from..])
        {
            let p = from + off;
            from = p + 1;
            if p < 2 || p + 15 > cell.len() {
                continue;
            }
            let (start, end) = (p - 2, p + 15);
            if mac_shape(&cell[start..end], b'-')
                && starts_word(cell, start)
                && ends_word(cell, end)
            {
                out.push(Detection {
                    entity: id,
                    start,
                    end,
                });
                from = end;
            }
        }
    }
}

fn mac_shape(text: &[u8], sep: u8) -> bool {
    text.len() == 17
        && text.iter().enumerate().all(|(i, &b)| {
            if i % 3 == 2 {
                b == sep
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')
}

fn base64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._~:/?#@!$&'()*+,;=%-[]".contains(&b)
}

/// Every occurrence of one literal trigger, checked for its entity's exact shape.
pub(super) fn literal<S: Stop>(
    m: &Matcher,
    lit: &LiteralFinder,
    cell: &[u8],
    out: &mut Vec<Detection>,
) {
    // `find` on the rest of the cell rather than `find_iter`, which copies the finder on
    // every call: most calls search a cell once and find nothing.
    let needle = lit.finder.needle().len();
    let mut from = 0;
    while !S::reached(out)
        && let Some(off) = cell.get(from..).and_then(|rest| lit.finder.find(rest))
    {
        let p = from + off;
        from = p + 1;
        let end = p + needle;
        let found = match lit.kind {
            Literal::Aws => aws(cell, p).zip(m.id(EntityType::AwsAccessKey)),
            Literal::Jwt => jwt(cell, p).zip(m.id(EntityType::Jwt)),
            Literal::PrivateKey => private_key(cell, p).zip(m.id(EntityType::PrivateKey)),
            Literal::Bearer => bearer(cell, p, end).zip(m.id(EntityType::BearerToken)),
            Literal::UrlScheme => url(cell, scheme_start(cell, p), end).zip(m.id(EntityType::Url)),
            Literal::UrlWww => {
                if starts_word(cell, p) {
                    url(cell, p, end).zip(m.id(EntityType::Url))
                } else {
                    None
                }
            }
        };
        if let Some(((start, end), entity)) = found {
            out.push(Detection { entity, start, end });
            from = from.max(end);
        }
    }
}

fn aws(cell: &[u8], p: usize) -> Option<(usize, usize)> {
    let end = p + 20;
    let key = cell.get(p..end)?;
    let ok = (key.starts_with(b"AKIA") || key.starts_with(b"ASIA"))
        && key
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && starts_word(cell, p)
        && ends_word(cell, end);
    ok.then_some((p, end))
}

fn jwt(cell: &[u8], p: usize) -> Option<(usize, usize)> {
    if !cell[p..].starts_with(b"eyJ")
        || (p > 0 && (base64url_byte(cell[p - 1]) || cell[p - 1] == b'.'))
    {
        return None;
    }
    let mut pos = p;
    let mut segments = [0usize; 3];
    for (k, len) in segments.iter_mut().enumerate() {
        let seg_start = pos;
        while pos < cell.len() && base64url_byte(cell[pos]) {
            pos += 1;
        }
        *len = pos - seg_start;
        if k < 2 {
            if cell.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
    }
    (segments[0] >= 10 && segments[1] >= 2 && cell.get(pos) != Some(&b'.')).then_some((p, pos))
}

fn private_key(cell: &[u8], p: usize) -> Option<(usize, usize)> {
    let rest = &cell[p..];
    if !rest.starts_with(b"-----BEGIN ") {
        return None;
    }
    let header_end = memchr::memmem::find(&rest[11..], b"-----")? + 11;
    if !rest[..header_end].ends_with(b"PRIVATE KEY") {
        return None;
    }
    let end = match memchr::memmem::find(&rest[header_end..], b"-----END ") {
        Some(e) => {
            let after = header_end + e + 9;
            memchr::memmem::find(&rest[after..], b"-----").map_or(rest.len(), |f| after + f + 5)
        }
        None => rest.len(),
    };
    Some((p, p + end))
}

/// The token after `Bearer` (one or more spaces, at least 16 token bytes): the token is the
/// secret; the word stays.
fn bearer(cell: &[u8], earer: usize, word_end: usize) -> Option<(usize, usize)> {
    // The finder matched "earer" (or "EARER"): the word starts one byte earlier.
    let p = earer.checked_sub(1)?;
    let b_ok = match cell[p] {
        b'B' => true,
        b'b' => cell[earer] == b'e',
        _ => false,
    };
    if !b_ok || !starts_word(cell, p) {
        return None;
    }
    let mut start = word_end;
    while start < cell.len() && cell[start] == b' ' {
        start += 1;
    }
    if start == word_end {
        return None;
    }
    let mut end = start;
    while end < cell.len() && token_byte(cell[end]) {
        end += 1;
    }
    (end - start >= 16).then_some((start, end))
}

fn scheme_start(cell: &[u8], colon: usize) -> usize {
    let mut s = colon;
    while s > 0
        && (cell[s - 1].is_ascii_alphanumeric() || matches!(cell[s - 1], b'+' | b'.' | b'-'))
    {
        s -= 1;
    }
    while s < colon && !cell[s].is_ascii_alphabetic() {
        s += 1;
    }
    s
}

fn url(cell: &[u8], start: usize, body: usize) -> Option<(usize, usize)> {
    if start >= body.saturating_sub(3) && cell.get(body.saturating_sub(3)..body) == Some(b"://") {
        return None;
    }
    // Before the scan: a run like `_a://_a://...` would otherwise be scanned to its end
    // from every `://` in it, each time to no avail (quadratic in the run).
    if !starts_word(cell, start) {
        return None;
    }
    let mut end = body;
    while end < cell.len() && url_byte(cell[end]) {
        end += 1;
    }
    while end > body
        && matches!(
            cell[end - 1],
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b')' | b']'
        )
    {
        end -= 1;
    }
    (end > body).then_some((start, end))
}

/// Custom word lists: every occurrence (overlapping), kept where it stands on word
/// boundaries (checked only on the sides where the word itself has a word byte).
pub(super) fn words<S: Stop>(
    ac: &AhoCorasick,
    owners: &[EntityId],
    cell: &[u8],
    out: &mut Vec<Detection>,
) {
    for hit in ac.find_overlapping_iter(cell) {
        if S::reached(out) {
            return;
        }
        let (s, e) = (hit.start(), hit.end());
        if s == e {
            continue;
        }
        let left_ok = !super::word_byte(cell[s]) || starts_word(cell, s);
        let right_ok = !super::word_byte(cell[e - 1]) || ends_word(cell, e);
        if left_ok && right_ok {
            out.push(Detection {
                entity: owners[hit.pattern().as_usize()],
                start: s,
                end: e,
            });
        }
    }
}

/// Custom regexes: one multi-pattern regex over the cell, leftmost-first; empty matches
/// are ignored.
pub(super) fn regexes<S: Stop>(
    re: &meta::Regex,
    cache: &mut meta::Cache,
    owners: &[EntityId],
    cell: &[u8],
    out: &mut Vec<Detection>,
) {
    let mut input = Input::new(cell);
    while !S::reached(out)
        && let Some(m) = re.search_with(cache, &input)
    {
        if m.is_empty() {
            if m.end() >= cell.len() {
                break;
            }
            input.set_start(m.end() + 1);
            continue;
        }
        out.push(Detection {
            entity: owners[m.pattern().as_usize()],
            start: m.start(),
            end: m.end(),
        });
        input.set_start(m.end());
    }
}
