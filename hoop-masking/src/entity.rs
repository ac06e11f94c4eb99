//! Entity types: what a detector finds and what a redaction label names.

use serde::{Deserialize, Serialize};

/// A built-in entity type, named as in hoop's (and Presidio's) data masking.
///
/// Each has a detector in this crate; [`EntityType::DEFAULT`] lists the ones a policy
/// enables when it names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum EntityType {
    /// `local@domain.tld`, with a valid domain (non-ASCII local parts and labels too).
    EmailAddress,
    /// 13 to 19 digits (plain, or grouped 4-4-4-4 / 4-6-5 by spaces or dashes), a major
    /// network prefix (2 to 6) and a valid Luhn check digit.
    CreditCardNumber,
    /// `AAA-GG-SSSS` or `AAA GG SSSS` with a valid area (not 000, 666 or 9xx), group
    /// (not 00) and serial (not 0000).
    UsSocialSecurityNumber,
    /// North American numbers with separators (`(555) 234-5678`, `555-234-5678`,
    /// `+1 555 234 5678`) and international numbers written with a leading `+` and
    /// 8 to 15 digits.
    PhoneNumber,
    /// IPv4 dotted quads (each octet at most 255) and IPv6 addresses that parse.
    IpAddress,
    /// An IBAN whose length fits its country and whose mod-97 check holds.
    IbanCode,
    /// `scheme://...` and `www.` URLs. Not in the default set: most URLs in data are not
    /// personal.
    Url,
    /// Six hex pairs separated by `:` or `-`, all the same.
    MacAddress,
    /// A 9-digit number or a letter and 8 digits, only in a column named for passports or
    /// after the word "passport" in the same cell (plain 9-digit numbers are too common to
    /// mask on sight).
    UsPassport,
    /// A calendar date (`1990-05-17`, `05/17/1990`, `17.05.1990`, `19900517`) in a column
    /// named for a birth date (`dob`, `birth_date`, ...).
    DateOfBirth,
    /// An AWS access key id (`AKIA...` or `ASIA...`, 20 characters).
    AwsAccessKey,
    /// A PEM private key block, from `-----BEGIN ... PRIVATE KEY-----` to its END line
    /// (or the end of the cell when it is cut short).
    PrivateKey,
    /// A JSON Web Token: three base64url segments, the first starting `eyJ`.
    Jwt,
    /// The token after `Bearer ` (at least 16 token characters).
    BearerToken,
}

impl EntityType {
    /// Every built-in entity type.
    pub const ALL: [Self; 14] = [
        Self::EmailAddress,
        Self::CreditCardNumber,
        Self::UsSocialSecurityNumber,
        Self::PhoneNumber,
        Self::IpAddress,
        Self::IbanCode,
        Self::Url,
        Self::MacAddress,
        Self::UsPassport,
        Self::DateOfBirth,
        Self::AwsAccessKey,
        Self::PrivateKey,
        Self::Jwt,
        Self::BearerToken,
    ];

    /// The entity types a policy enables when its `entities` field is absent: all but
    /// [`EntityType::Url`].
    pub const DEFAULT: [Self; 13] = [
        Self::EmailAddress,
        Self::CreditCardNumber,
        Self::UsSocialSecurityNumber,
        Self::PhoneNumber,
        Self::IpAddress,
        Self::IbanCode,
        Self::MacAddress,
        Self::UsPassport,
        Self::DateOfBirth,
        Self::AwsAccessKey,
        Self::PrivateKey,
        Self::Jwt,
        Self::BearerToken,
    ];

    /// The name used in policies, labels and counts, e.g. `EMAIL_ADDRESS`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EmailAddress => "EMAIL_ADDRESS",
            Self::CreditCardNumber => "CREDIT_CARD_NUMBER",
            Self::UsSocialSecurityNumber => "US_SOCIAL_SECURITY_NUMBER",
            Self::PhoneNumber => "PHONE_NUMBER",
            Self::IpAddress => "IP_ADDRESS",
            Self::IbanCode => "IBAN_CODE",
            Self::Url => "URL",
            Self::MacAddress => "MAC_ADDRESS",
            Self::UsPassport => "US_PASSPORT",
            Self::DateOfBirth => "DATE_OF_BIRTH",
            Self::AwsAccessKey => "AWS_ACCESS_KEY",
            Self::PrivateKey => "PRIVATE_KEY",
            Self::Jwt => "JWT",
            Self::BearerToken => "BEARER_TOKEN",
        }
    }

    /// The built-in entity type with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The reference regular expression for this entity type (ASCII mode).
    ///
    /// The matcher does not run these over whole cells: it finds candidates with
    /// prefilters and hand-written shape checks, then validates them. These patterns
    /// describe the same shapes for readers and are what the benchmarks' naive baseline
    /// (one plain alternation) runs.
    pub const fn reference_pattern(self) -> &'static str {
        match self {
            Self::EmailAddress => {
                r"[A-Za-z0-9_%+\x80-\xFF-]+(?:\.[A-Za-z0-9_%+\x80-\xFF-]+)*@(?:[A-Za-z0-9\x80-\xFF](?:[A-Za-z0-9\x80-\xFF-]*[A-Za-z0-9\x80-\xFF])?\.)+[A-Za-z]{2,}\b"
            }
            Self::CreditCardNumber => {
                r"\b(?:[0-9]{4}[ -]){3}[0-9]{4}\b|\b[0-9]{4}[ -][0-9]{6}[ -][0-9]{5}\b|\b[0-9]{13,19}\b"
            }
            Self::UsSocialSecurityNumber => {
                r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b"
            }
            Self::PhoneNumber => {
                r"(?:\+?\b1[ .-]?)?(?:\B\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}\b|\+[1-9](?:[ .-]?[0-9]){7,14}\b"
            }
            Self::IpAddress => {
                r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
            }
            Self::IbanCode => r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            Self::Url => r"\b(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+",
            Self::MacAddress => r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b",
            Self::UsPassport => r"\b[0-9]{9}\b|\b[A-Z][0-9]{8}\b",
            Self::DateOfBirth => {
                r"\b[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}\b|\b[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{4}\b"
            }
            Self::AwsAccessKey => r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
            Self::PrivateKey => r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            Self::Jwt => r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
            Self::BearerToken => r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}",
        }
    }
}

/// An entity type of one compiled policy: a built-in type, a custom entity or the label of
/// a column rule. Index it with [`CompiledPolicy::entity_name`](crate::CompiledPolicy::entity_name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(pub(crate) u16);

impl EntityId {
    /// The position of this entity in its policy's entity table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}
