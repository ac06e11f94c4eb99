//! Checks that turn a candidate with the right shape into a detection.
//!
//! A value of the right shape that fails its check is not masked: a 16-digit order number
//! that fails Luhn is left alone, and so is `000-12-3456`.

/// Luhn mod-10 over ASCII digits (other bytes are skipped, so grouped numbers work).
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in digits.iter().rev() {
        if !b.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

/// A card number: 13 to 19 digits, a major network's first digit (2 to 6), not one digit
/// repeated (all zeros passes Luhn), and Luhn.
pub(crate) fn card(span: &[u8]) -> bool {
    let mut count = 0;
    let mut first = None;
    let mut all_same = true;
    for &b in span.iter().filter(|b| b.is_ascii_digit()) {
        count += 1;
        match first {
            None => first = Some(b),
            Some(f) => all_same &= f == b,
        }
    }
    (13..=19).contains(&count) && matches!(first, Some(b'2'..=b'6')) && !all_same && luhn(span)
}

fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |n, &b| {
        n.saturating_mul(10)
            .saturating_add(u32::from(b.wrapping_sub(b'0')))
    })
}

/// A US SSN from its three digit groups: area not 000, 666 or 900-999; group not 00;
/// serial not 0000.
pub(crate) fn ssn(area: &[u8], group: &[u8], serial: &[u8]) -> bool {
    let a = number(area);
    a != 0 && a != 666 && a < 900 && number(group) != 0 && number(serial) != 0
}

/// An IPv4 dotted quad's octets, each at most 255.
pub(crate) fn ipv4_octet(digits: &[u8]) -> bool {
    number(digits) <= 255
}

/// An IPv6 address that the standard library parses, and more than the bare `::`.
pub(crate) fn ipv6(text: &[u8]) -> bool {
    if text.len() < 3 || !text.iter().any(u8::is_ascii_hexdigit) {
        return false;
    }
    // Without "::" an address has exactly seven colons: a time like 10:22:33 never reaches
    // the parser.
    let colons = memchr::memchr_iter(b':', text).count();
    if colons != 7 && memchr::memmem::find(text, b"::").is_none() {
        return false;
    }
    std::str::from_utf8(text).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// A calendar date with a plausible birth year.
pub(crate) fn date(year: &[u8], month: &[u8], day: &[u8]) -> bool {
    let (y, m, d) = (number(year), number(month), number(day));
    if !(1800..=2100).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= days
}

/// The IBAN length of a country code, per the SWIFT IBAN registry.
pub(crate) fn iban_length(country: [u8; 2]) -> Option<usize> {
    const LENGTHS: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BI", 27),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DJ", 27),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FK", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"LY", 25),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MN", 20),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NI", 28),
        (b"NL", 18),
        (b"NO", 15),
        (b"OM", 23),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"RU", 33),
        (b"SA", 24),
        (b"SC", 31),
        (b"SD", 18),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"SO", 23),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
        (b"YE", 30),
    ];
    LENGTHS
        .iter()
        .find(|(c, _)| **c == country)
        .map(|&(_, n)| n)
}

/// ISO 13616 mod-97 over an IBAN's characters (no spaces): the first four moved to the
/// end, letters as 10..35, the remainder must be 1.
pub(crate) fn iban_mod97(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        match b {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(b - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// An email's length limits (RFC 5321): local part 64, whole address 254, labels 63.
pub(crate) fn email(text: &[u8]) -> bool {
    let Some(at) = memchr::memchr(b'@', text) else {
        return false;
    };
    at <= 64 && text.len() <= 254 && text[at + 1..].split(|&b| b == b'.').all(|l| l.len() <= 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_a_changed_digit() {
        assert!(card(b"4111111111111111"));
        assert!(card(b"4111 1111 1111 1111"));
        assert!(card(b"378282246310005"));
        assert!(!card(b"4111111111111112"));
        assert!(!card(b"0000000000000000"));
    }

    #[test]
    fn ssn_rejects_reserved_areas_groups_and_serials() {
        assert!(ssn(b"123", b"45", b"6789"));
        assert!(!ssn(b"000", b"12", b"3456"));
        assert!(!ssn(b"666", b"12", b"3456"));
        assert!(!ssn(b"912", b"12", b"3456"));
        assert!(!ssn(b"123", b"00", b"3456"));
        assert!(!ssn(b"123", b"45", b"0000"));
    }

    #[test]
    fn iban_mod97_accepts_registry_examples() {
        assert!(iban_mod97(b"GB29NWBK60161331926819"));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(!iban_mod97(b"DE89370400440532013001"));
    }

    #[test]
    fn date_knows_month_lengths_and_leap_years() {
        assert!(date(b"2000", b"02", b"29"));
        assert!(!date(b"1900", b"02", b"29"));
        assert!(!date(b"1990", b"13", b"01"));
        assert!(!date(b"1990", b"04", b"31"));
    }
}
