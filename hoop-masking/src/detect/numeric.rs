//! Digit-shaped entities: cards, SSNs, phones, IPv4, IBANs, passports, birth dates.
//!
//! A cell with enough digits is cut into windows: runs of digit groups joined by at most
//! two separator bytes (` -./()`). Each entity is a shape over a window's group lengths
//! (4-4-4-4, 3-2-4, 3-3-4, 1-3 x4 dotted, ...), so a timestamp (4-2-2 2:2:2) is rejected by
//! comparing a few integers, without running any regex.

use super::{ColumnGates, Detection, Matcher, Stop, ends_word, starts_word, validate};
use crate::entity::{EntityId, EntityType};

/// The fewest digits any ungated numeric detector needs (an international phone number:
/// `+` and 8 digits; an IBAN has at least 8 digits too).
pub(super) const MIN_DIGITS: usize = 8;

/// A run of ASCII digits, `cell[start..end]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Group {
    start: usize,
    end: usize,
}

impl Group {
    fn len(self) -> usize {
        self.end - self.start
    }
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'/' | b'(' | b')')
}

pub(super) fn find<S: Stop>(
    m: &Matcher,
    cell: &[u8],
    gates: ColumnGates,
    groups: &mut Vec<Group>,
    out: &mut Vec<Detection>,
) {
    let mut i = 0;
    let n = cell.len();
    while i < n && !S::reached(out) {
        if !cell[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        groups.clear();
        let mut digits = 0;
        let mut start = i;
        loop {
            let mut end = start;
            while end < n && cell[end].is_ascii_digit() {
                end += 1;
            }
            groups.push(Group { start, end });
            digits += end - start;
            let mut next = end;
            while next < n && next - end < 2 && is_sep(cell[next]) {
                next += 1;
            }
            if next > end && next < n && cell[next].is_ascii_digit() {
                start = next;
            } else {
                i = end;
                break;
            }
        }
        // Every shape needs eight digits, or four in three groups (a dotted quad, a short
        // date), or starts an IBAN: a time's "22" or a price's "1234.56" is not looked at.
        let first = groups[0].start;
        let iban_start = first >= 2
            && cell[first - 2].is_ascii_uppercase()
            && cell[first - 1].is_ascii_uppercase()
            && m.id(EntityType::IbanCode).is_some();
        let short_shape = digits >= 4
            && groups.len() >= 3
            && (gates.date_of_birth || m.id(EntityType::IpAddress).is_some());
        if iban_start || digits >= MIN_DIGITS || short_shape {
            window(m, cell, gates, groups, out);
        }
    }
}

fn push(out: &mut Vec<Detection>, entity: Option<EntityId>, start: usize, end: usize) {
    if let Some(entity) = entity {
        out.push(Detection { entity, start, end });
    }
}

fn sep<'a>(cell: &'a [u8], g: &[Group], i: usize) -> &'a [u8] {
    &cell[g[i].end..g[i + 1].start]
}

fn lens(g: &[Group], i: usize, want: &[usize]) -> bool {
    g.len() >= i + want.len() && want.iter().enumerate().all(|(k, &l)| g[i + k].len() == l)
}

/// Which group lengths a window has (bit `n` for length `n`, 31 for longer) and how many
/// groups of four: each shape needs certain lengths, so a timestamp's 4-2-2-2 skips the
/// card, SSN, phone and address checks at once.
fn lengths(g: &[Group]) -> (u32, usize) {
    let mut mask = 0u32;
    let mut fours = 0;
    for group in g {
        mask |= 1 << group.len().min(31);
        fours += usize::from(group.len() == 4);
    }
    (mask, fours)
}

fn window(m: &Matcher, cell: &[u8], gates: ColumnGates, g: &[Group], out: &mut Vec<Detection>) {
    let (mask, fours) = lengths(g);
    let has = |len: u32| mask & (1 << len) != 0;
    let long = mask & (0x7F << 13) != 0;
    let card = m
        .id(EntityType::CreditCardNumber)
        .filter(|_| long || fours >= 4 || (has(4) && has(6) && has(5)));
    let ssn = m
        .id(EntityType::UsSocialSecurityNumber)
        .filter(|_| has(3) && has(2) && has(4));
    // NANP needs 3-3-4; an international number starts after a '+'.
    let plus = g.iter().any(|x| x.start > 0 && cell[x.start - 1] == b'+');
    let phone = m
        .id(EntityType::PhoneNumber)
        .filter(|_| plus || (has(3) && has(4)));
    let ip = m
        .id(EntityType::IpAddress)
        .filter(|_| g.len() >= 4 && mask & 0b1110 != 0);
    let iban = m.id(EntityType::IbanCode);
    let passport = m.id(EntityType::UsPassport);
    let dob = if gates.date_of_birth {
        m.id(EntityType::DateOfBirth)
    } else {
        None
    };
    for i in 0..g.len() {
        let s = g[i].start;
        if card.is_some() {
            if (13..=19).contains(&g[i].len())
                && starts_word(cell, s)
                && ends_word(cell, g[i].end)
                && validate::card(&cell[s..g[i].end])
            {
                push(out, card, s, g[i].end);
            }
            for shape in [&[4, 4, 4, 4][..], &[4, 6, 5]] {
                let k = shape.len() - 1;
                if lens(g, i, shape)
                    && (i..i + k).all(|j| matches!(sep(cell, g, j), b" " | b"-"))
                    && starts_word(cell, s)
                    && ends_word(cell, g[i + k].end)
                    && validate::card(&cell[s..g[i + k].end])
                {
                    push(out, card, s, g[i + k].end);
                }
            }
        }
        if ssn.is_some() && lens(g, i, &[3, 2, 4]) {
            let (a, b) = (sep(cell, g, i), sep(cell, g, i + 1));
            if a == b
                && matches!(a, b"-" | b" ")
                && starts_word(cell, s)
                && ends_word(cell, g[i + 2].end)
                && validate::ssn(
                    &cell[s..g[i].end],
                    &cell[g[i + 1].start..g[i + 1].end],
                    &cell[g[i + 2].start..g[i + 2].end],
                )
            {
                push(out, ssn, s, g[i + 2].end);
            }
        }
        if phone.is_some() {
            nanp_phone(cell, g, i, phone, out);
            international_phone(cell, g, i, phone, out);
        }
        if ip.is_some() && g.len() >= i + 4 && (i..i + 4).all(|j| (1..=3).contains(&g[j].len())) {
            let end = g[i + 3].end;
            let dotted = (i..i + 3).all(|j| sep(cell, g, j) == b".");
            let before = s == 0 || (cell[s - 1] != b'.' && starts_word(cell, s));
            let after = ends_word(cell, end)
                && !(cell.get(end) == Some(&b'.')
                    && cell.get(end + 1).is_some_and(u8::is_ascii_digit));
            if dotted
                && before
                && after
                && (i..i + 4).all(|j| validate::ipv4_octet(&cell[g[j].start..g[j].end]))
            {
                push(out, ip, s, end);
            }
        }
        if iban.is_some() && s >= 2 && g[i].len() >= 2 {
            iban_at(cell, s - 2, iban, out);
        }
        if passport.is_some() {
            passport_at(cell, gates, g[i], passport, out);
        }
        if dob.is_some() {
            date_at(cell, g, i, dob, out);
        }
    }
}

/// `(555) 234-5678`, `555-234-5678`, `555.234.5678`, `555 234 5678`, with an optional
/// `1` or `+1` country prefix.
fn nanp_phone(cell: &[u8], g: &[Group], i: usize, id: Option<EntityId>, out: &mut Vec<Detection>) {
    if !lens(g, i, &[3, 3, 4]) || !matches!(cell[g[i].start], b'2'..=b'9') {
        return;
    }
    let (a, b) = (sep(cell, g, i), sep(cell, g, i + 1));
    let paren = g[i].start > 0 && cell[g[i].start - 1] == b'(';
    let first_ok = if paren {
        matches!(a, b")" | b") ")
    } else {
        matches!(a, b"-" | b"." | b" ")
    };
    if !first_ok || !matches!(b, b"-" | b"." | b" ") {
        return;
    }
    let mut start = if paren { g[i].start - 1 } else { g[i].start };
    if i > 0 && g[i - 1].len() == 1 && cell[g[i - 1].start] == b'1' {
        let between = &cell[g[i - 1].end..start];
        if matches!(between, b" " | b"-" | b"." | b"") {
            start = g[i - 1].start;
            if start > 0 && cell[start - 1] == b'+' {
                start -= 1;
            }
        }
    }
    let end = g[i + 2].end;
    if starts_word(cell, start) && ends_word(cell, end) {
        push(out, id, start, end);
    }
}

/// `+44 20 7946 0958`: a `+`, a first digit 1-9, groups joined by single spaces, dashes
/// or dots, 8 to 15 digits in all.
fn international_phone(
    cell: &[u8],
    g: &[Group],
    i: usize,
    id: Option<EntityId>,
    out: &mut Vec<Detection>,
) {
    let s = g[i].start;
    if s == 0 || cell[s - 1] != b'+' || cell[s] == b'0' || !starts_word(cell, s - 1) {
        return;
    }
    let mut digits = 0;
    let mut best = None;
    for j in i..g.len() {
        if j > i && !matches!(sep(cell, g, j - 1), b" " | b"-" | b".") {
            break;
        }
        digits += g[j].len();
        if digits > 15 {
            break;
        }
        if digits >= 8 && ends_word(cell, g[j].end) {
            best = Some(g[j].end);
        }
    }
    if let Some(end) = best {
        push(out, id, s - 1, end);
    }
}

/// An IBAN starting at `start` (two uppercase letters, then the check digits at
/// `start + 2`), written plain or in groups of four.
fn iban_at(cell: &[u8], start: usize, id: Option<EntityId>, out: &mut Vec<Detection>) {
    let country = [cell[start], cell[start + 1]];
    if !country.iter().all(u8::is_ascii_uppercase) || !starts_word(cell, start) {
        return;
    }
    let Some(len) = validate::iban_length(country) else {
        return;
    };
    let mut buf = [0u8; 34];
    let mut count = 0;
    let mut pos = start;
    while count < len && pos < cell.len() {
        let b = cell[pos];
        if b.is_ascii_digit() || b.is_ascii_uppercase() {
            buf[count] = b;
            count += 1;
            pos += 1;
        } else if b == b' ' && count % 4 == 0 && count > 0 {
            pos += 1;
        } else {
            break;
        }
    }
    if count == len && ends_word(cell, pos) && validate::iban_mod97(&buf[..count]) {
        push(out, id, start, pos);
    }
}

/// Nine digits, or a letter and eight digits, in a passport column or after the word
/// "passport" earlier in the cell (within 64 bytes).
fn passport_at(
    cell: &[u8],
    gates: ColumnGates,
    g: Group,
    id: Option<EntityId>,
    out: &mut Vec<Detection>,
) {
    let start = match g.len() {
        9 => g.start,
        8 if g.start > 0 && cell[g.start - 1].is_ascii_uppercase() => g.start - 1,
        _ => return,
    };
    if !starts_word(cell, start) || !ends_word(cell, g.end) {
        return;
    }
    let context = || {
        let from = start.saturating_sub(64);
        cell[from..start]
            .windows(8)
            .any(|w| w.eq_ignore_ascii_case(b"passport"))
    };
    if gates.passport || context() {
        push(out, id, start, g.end);
    }
}

/// `1990-05-17`, `1990/5/17`, `05/17/1990`, `17.05.1990`, `19900517`.
fn date_at(cell: &[u8], g: &[Group], i: usize, id: Option<EntityId>, out: &mut Vec<Detection>) {
    let digits = |k: usize| &cell[g[k].start..g[k].end];
    let s = g[i].start;
    if g[i].len() == 8 {
        let d = digits(i);
        if starts_word(cell, s)
            && ends_word(cell, g[i].end)
            && validate::date(&d[..4], &d[4..6], &d[6..])
        {
            push(out, id, s, g[i].end);
        }
        return;
    }
    if g.len() < i + 3 {
        return;
    }
    let (a, b) = (sep(cell, g, i), sep(cell, g, i + 1));
    if a != b || !matches!(a, b"-" | b"/" | b".") {
        return;
    }
    let end = g[i + 2].end;
    if !starts_word(cell, s) || !ends_word(cell, end) {
        return;
    }
    let short = |k: usize| (1..=2).contains(&g[k].len());
    let valid = if g[i].len() == 4 && short(i + 1) && short(i + 2) {
        validate::date(digits(i), digits(i + 1), digits(i + 2))
    } else if short(i) && short(i + 1) && g[i + 2].len() == 4 {
        validate::date(digits(i + 2), digits(i), digits(i + 1))
            || validate::date(digits(i + 2), digits(i + 1), digits(i))
    } else {
        false
    };
    if valid {
        push(out, id, s, end);
    }
}
