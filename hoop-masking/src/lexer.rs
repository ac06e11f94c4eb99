//! The SQL lexer shared by the credential redactor and the guardrails: tokens of each
//! dialect's quoting and comments, never failing on any input.
//!
//! Where a server setting could change where a token ends, the caller picks: the redactor
//! hides more, the guardrails read the text once per setting that changes it.

use std::ops::ControlFlow;

use memchr::{memchr, memchr2, memmem};

/// The SQL dialect a statement is parsed in: the connection's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL (and protocol-compatible servers).
    PostgreSql,
    /// MySQL and MariaDB.
    MySql,
    /// Microsoft SQL Server (T-SQL).
    MsSql,
    /// SQLite.
    Sqlite,
    /// Any other: sqlparser's permissive generic dialect.
    Generic,
}

/// MySQL 5.7's version: MariaDB skips executable comments for MySQL 5.7 and later, up to
/// its own versions (10.0 and later).
const MYSQL_57: u32 = 50700;

/// MariaDB 10.0's version.
const MARIADB_10: u32 = 100_000;

/// Dollar-quoted bodies inside dollar-quoted bodies are searched this deep; deeper ones are
/// searched as plain literals. Each level lexes its body again, so this bounds the work at
/// this many passes over the text.
pub(crate) const MAX_NESTING: usize = 3;

/// A token's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A keyword or unquoted identifier (letters, digits, `_`, `$`, non-ASCII).
    Word,
    /// A number (or anything starting with a digit), or a `$1` parameter.
    Number,
    /// A string literal: `'...'`, `E'...'`, MySQL's `"..."`. `backslash` when backslash
    /// escapes apply.
    Str { quote: u8, backslash: bool },
    /// A dollar-quoted string, `$tag$...$tag$`.
    Dollar,
    /// A quoted identifier: `"..."`, `` `...` `` (MySQL), `[...]` (SQL Server).
    QuotedIdent,
    /// Any other byte.
    Punct(u8),
}

/// A token: its kind, its bytes `start..end`, and for quoted tokens their content
/// `content_start..content_end` (escapes as written). An unterminated quoted token runs to
/// the end of the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) content_start: usize,
    pub(crate) content_end: usize,
}

/// Server settings that move where a token ends. A client may change each of them in its
/// session (`SET sql_mode = 'NO_BACKSLASH_ESCAPES'`, `SET standard_conforming_strings =
/// off`), so the guardrails read a statement under every combination that changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Backslash escapes in `'...'` (and MySQL's `"..."`) strings: MySQL without
    /// `NO_BACKSLASH_ESCAPES`, PostgreSQL with `standard_conforming_strings` off.
    /// PostgreSQL's `E'...'` has them always.
    pub(crate) backslash: bool,
    /// MySQL's `ANSI_QUOTES`: `"..."` is an identifier, not a string.
    pub(crate) ansi_quotes: bool,
    /// Dollar-quoted strings: PostgreSQL always, MySQL from 9.
    pub(crate) dollar_quotes: bool,
    /// A multibyte character set of the client whose characters may end in `\` or a
    /// backtick (`SET NAMES gbk`): such a character takes those bytes in, where UTF-8
    /// sees an escape or a quote.
    pub(crate) multibyte: Option<Multibyte>,
    /// The server whose executable comments (`/*!...*/`) are read, and so whether each
    /// one's text is code or skipped; `None`: every one's text is code, whatever its
    /// version (the redactor's reading: more of the text is searched).
    pub(crate) server: Option<Server>,
}

impl Settings {
    /// The dialect's default settings, executable comments always read as code.
    pub(crate) fn of(dialect: Dialect) -> Self {
        Self {
            backslash: dialect == Dialect::MySql,
            ansi_quotes: false,
            dollar_quotes: matches!(dialect, Dialect::PostgreSql | Dialect::Generic),
            multibyte: None,
            server: None,
        }
    }
}

/// Client character sets whose two-byte characters may end in an ASCII byte that matters
/// to the lexer (`\`, `` ` ``). EUC-KR, EUC-JP and UHC never do (their second bytes are
/// letters or past ASCII); GB18030's four-byte characters end in digits, so GBK's pairs
/// stand for it here; cp932 is Shift-JIS's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Multibyte {
    /// GBK and GB18030.
    Gbk,
    /// Shift-JIS and cp932.
    ShiftJis,
    /// Big5.
    Big5,
    /// JOHAB (PostgreSQL's client encodings).
    Johab,
}

impl Multibyte {
    /// Whether `lead` and `trail` make one character.
    pub(crate) fn pair(self, lead: u8, trail: u8) -> bool {
        match self {
            Self::Gbk => matches!(lead, 0x81..=0xfe) && matches!(trail, 0x40..=0x7e | 0x80..=0xfe),
            Self::ShiftJis => {
                matches!(lead, 0x81..=0x9f | 0xe0..=0xfc)
                    && matches!(trail, 0x40..=0x7e | 0x80..=0xfc)
            }
            Self::Big5 => matches!(lead, 0xa1..=0xf9) && matches!(trail, 0x40..=0x7e | 0xa1..=0xfe),
            Self::Johab => {
                matches!(lead, 0x84..=0xd3 | 0xd8..=0xde | 0xe0..=0xf9)
                    && matches!(trail, 0x31..=0x7e | 0x91..=0xfe)
            }
        }
    }
}

/// A MySQL-protocol server, for its reading of executable comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Server {
    /// MariaDB (runs `/*M!...*/`; skips MySQL 5.7+ versions `/*!50700` to `/*!99999`), or
    /// MySQL (`/*M!` is a plain comment to it).
    pub(crate) mariadb: bool,
    /// `MYSQL_VERSION_ID`: major * 10000 + minor * 100 + patch.
    pub(crate) version: u32,
}

/// A MySQL executable comment's version (none: it always runs), and where its text starts.
struct Versioned {
    version: Option<u32>,
    text: usize,
}

/// Splits SQL text into tokens, skipping whitespace and comments. Never fails: anything it
/// does not know is a one-byte [`Kind::Punct`]. Every call consumes at least one byte or
/// returns `None`.
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    dialect: Dialect,
    settings: Settings,
    /// Inside MySQL's `/*! ... */`, whose text is SQL: its `*/` is skipped.
    in_executable_comment: bool,
    /// Whitespace or a comment came before the last token; a line end among it; a block
    /// comment among it.
    spaced: bool,
    newline: bool,
    block_comment: bool,
    /// Text whose reading depends on what the settings do not say (the client's character
    /// set), or that a server refuses to read: why.
    ambiguity: Option<&'static str>,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a [u8], dialect: Dialect) -> Self {
        Self::with(src, dialect, Settings::of(dialect))
    }

    pub(crate) fn with(src: &'a [u8], dialect: Dialect, settings: Settings) -> Self {
        Self {
            src,
            pos: 0,
            dialect,
            settings,
            in_executable_comment: false,
            spaced: false,
            newline: false,
            block_comment: false,
            ambiguity: None,
        }
    }

    /// Whether whitespace or a comment came before the last token, whether it held a line
    /// end, and whether it held a block comment.
    pub(crate) fn space_before(&self) -> (bool, bool, bool) {
        (self.spaced, self.newline, self.block_comment)
    }

    /// Why the text so far reads differently on some server the settings do not describe,
    /// if it does.
    pub(crate) fn ambiguity(&self) -> Option<&'static str> {
        self.ambiguity
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    /// Continues after `pos` (never backwards).
    pub(crate) fn resume_at(&mut self, pos: usize) {
        self.pos = self.pos.max(pos.min(self.src.len()));
    }

    fn mysql(&self) -> bool {
        self.dialect == Dialect::MySql
    }

    /// Whether `--` at `self.pos` starts a comment. PostgreSQL: always. MySQL: when a space or
    /// a control byte follows (`1--1` is arithmetic); DEL and bytes past ASCII are control
    /// or space bytes in some character sets only (latin1's 0xA0, not cp1251's DEL), which
    /// the text as it reached us cannot tell, so reading on from them is ambiguous.
    fn dash_comment(&mut self) -> bool {
        if !self.mysql() {
            return true;
        }
        match self.at(self.pos + 2) {
            None => true,
            Some(c) if c <= b' ' => true,
            Some(_) if self.settings.server.is_none() => false,
            Some(c) => {
                if c >= 0x7f {
                    self.ambiguity = Some("a `--` reads as a comment in some character sets only");
                }
                false
            }
        }
    }

    /// Skips whitespace and comments; false at the end of the text.
    fn skip_trivia(&mut self) -> bool {
        self.spaced = false;
        self.newline = false;
        self.block_comment = false;
        loop {
            let Some(b) = self.at(self.pos) else {
                return false;
            };
            let next = self.at(self.pos + 1);
            match b {
                // Vertical tab included: MySQL's space, and PostgreSQL's from 16 (15 refuses it).
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                    self.newline |= matches!(b, b'\n' | b'\r');
                    self.pos += 1;
                }
                b'-' if next == Some(b'-') && self.dash_comment() => {
                    self.skip_line();
                    self.newline = true;
                }
                b'#' if self.mysql() => {
                    self.skip_line();
                    self.newline = true;
                }
                b'/' if next == Some(b'*') => {
                    self.block_comment = true;
                    self.comment();
                }
                b'*' if next == Some(b'/') && self.in_executable_comment => {
                    self.pos += 2;
                    self.in_executable_comment = false;
                }
                _ => return true,
            }
            self.spaced = true;
        }
    }

    /// A comment from `self.pos` (at its `/*`): skipped, or, for MySQL's executable
    /// comments (`/*!`, `/*!NNNNN`, MariaDB's `/*M!`, `/*M!NNNNNN`) that the server runs,
    /// entered: their text is code, to their `*/`.
    fn comment(&mut self) {
        let after = self.at(self.pos + 2);
        let mariadb_only = after == Some(b'M') && self.at(self.pos + 3) == Some(b'!');
        if !self.mysql() || after != Some(b'!') && !mariadb_only {
            self.skip_block_comment();
            return;
        }
        let digits = self.pos + if mariadb_only { 4 } else { 3 };
        let Some(server) = self.settings.server else {
            // Every executable comment's text is code, after its version (any digits).
            self.pos = digits;
            while self.at(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            self.in_executable_comment = true;
            return;
        };
        if mariadb_only && !server.mariadb {
            // A plain comment to MySQL.
            self.skip_block_comment();
            return;
        }
        let versioned = self.versioned(digits, server.mariadb);
        let runs = versioned.version.is_none_or(|v| {
            v <= server.version
                && !(server.mariadb && !mariadb_only && (MYSQL_57..MARIADB_10).contains(&v))
        });
        if self.in_executable_comment {
            // One inside another: the server refuses a second one it would run, and reads
            // one it skips as a plain comment.
            if runs {
                self.ambiguity = Some("an executable comment holds another");
            }
            self.skip_block_comment();
        } else if runs {
            self.pos = versioned.text;
            self.in_executable_comment = true;
        } else {
            self.skip_versioned_comment();
        }
    }

    /// The version after an executable comment's `!` at `at`: MariaDB reads 5 or 6
    /// digits; MySQL 5, or 6 when whitespace follows them; fewer than 5 digits are no
    /// version, and text.
    fn versioned(&self, at: usize, mariadb: bool) -> Versioned {
        let digit = |i: usize| self.at(at + i).is_some_and(|c| c.is_ascii_digit());
        let count = (0..7).take_while(|&i| digit(i)).count();
        let len = match count {
            0..=4 => {
                return Versioned {
                    version: None,
                    text: at,
                };
            }
            5 => 5,
            _ if mariadb => 6,
            _ if self
                .at(at + 6)
                .is_some_and(|c| c.is_ascii_whitespace() || c == 0x0b) =>
            {
                6
            }
            _ => 5,
        };
        let version = self
            .src
            .get(at..at + len)
            .unwrap_or_default()
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        Versioned {
            version: Some(version),
            text: at + len,
        }
    }

    /// A versioned comment the server skips: to its `*/`, past at most one plain comment
    /// inside it (`/*!99999 a /* b */ c */` ends after `c`). Unterminated: to the end.
    fn skip_versioned_comment(&mut self) {
        let mut i = self.pos + 3;
        while let Some(off) = memchr2(b'*', b'/', self.src.get(i..).unwrap_or_default()) {
            let j = i + off;
            match (self.at(j), self.at(j + 1)) {
                (Some(b'*'), Some(b'/')) => {
                    self.pos = j + 2;
                    return;
                }
                (Some(b'/'), Some(b'*')) => {
                    self.pos = j;
                    self.skip_block_comment();
                    i = self.pos;
                }
                _ => i = j + 1,
            }
        }
        self.pos = self.src.len();
    }

    /// To the end of the line: `\n` for MySQL, also `\r` for PostgreSQL.
    fn skip_line(&mut self) {
        let rest = self.src.get(self.pos..).unwrap_or_default();
        let end = if matches!(self.dialect, Dialect::PostgreSql | Dialect::Generic) {
            memchr2(b'\n', b'\r', rest)
        } else {
            memchr(b'\n', rest)
        };
        self.pos += end.map_or(rest.len(), |i| i + 1);
    }

    /// `/* ... */`, nested in PostgreSQL and SQL Server (and the generic dialect), flat in
    /// MySQL and SQLite. Unterminated: to the end.
    fn skip_block_comment(&mut self) {
        let nested = !matches!(self.dialect, Dialect::MySql | Dialect::Sqlite);
        let mut depth = 0usize;
        let mut i = self.pos;
        while let Some(off) = memchr2(b'*', b'/', self.src.get(i..).unwrap_or_default()) {
            let j = i + off;
            match (self.src[j], self.at(j + 1)) {
                (b'/', Some(b'*')) if nested || depth == 0 => {
                    depth += 1;
                    i = j + 2;
                }
                (b'*', Some(b'/')) => {
                    depth = depth.saturating_sub(1);
                    i = j + 2;
                    if depth == 0 {
                        self.pos = i;
                        return;
                    }
                }
                _ => i = j + 1,
            }
        }
        self.pos = self.src.len();
    }

    pub(crate) fn next_token(&mut self) -> Option<Token> {
        if !self.skip_trivia() {
            return None;
        }
        let start = self.pos;
        let b = self.at(start)?;
        let token = match b {
            b'\'' => self.quoted(start, b'\'', self.settings.backslash, true),
            b'"' if self.mysql() && !self.settings.ansi_quotes => {
                self.quoted(start, b'"', self.settings.backslash, true)
            }
            b'"' => self.quoted(start, b'"', false, false),
            b'`' if matches!(self.dialect, Dialect::MySql | Dialect::Generic) => {
                self.quoted(start, b'`', false, false)
            }
            b'[' if self.dialect == Dialect::MsSql => {
                let (end, closed) = scan_quoted(self.src, start + 1, b']', false);
                let content_end = if closed { end - 1 } else { end };
                self.token(Kind::QuotedIdent, start, end, start + 1, content_end)
            }
            b'$' => match self.dollar_tag(start) {
                Some(tag) if self.settings.dollar_quotes => {
                    let body = start + tag;
                    let delimiter = self.src.get(start..body).unwrap_or_default();
                    match memmem::find(self.src.get(body..).unwrap_or_default(), delimiter) {
                        Some(off) => {
                            self.token(Kind::Dollar, start, body + off + tag, body, body + off)
                        }
                        None => {
                            self.token(Kind::Dollar, start, self.src.len(), body, self.src.len())
                        }
                    }
                }
                _ if self.at(start + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    let mut end = start + 1;
                    while self.at(end).is_some_and(|c| c.is_ascii_digit()) {
                        end += 1;
                    }
                    self.token(Kind::Number, start, end, end, end)
                }
                _ => self.token(Kind::Punct(b'$'), start, start + 1, start + 1, start + 1),
            },
            b'0'..=b'9' => {
                let mut end = start + 1;
                while self
                    .at(end)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
                {
                    end += 1;
                }
                self.token(Kind::Number, start, end, end, end)
            }
            _ if word_start(b) => {
                let mut end = start;
                loop {
                    if let (Some(mb), Some(lead), Some(trail)) =
                        (self.settings.multibyte, self.at(end), self.at(end + 1))
                        && mb.pair(lead, trail)
                    {
                        end += 2;
                    } else if self
                        .at(end)
                        .is_some_and(|c| word_start(c) || c.is_ascii_digit() || c == b'$')
                    {
                        end += 1;
                    } else {
                        break;
                    }
                }
                // `E'...'`: PostgreSQL's escape string, backslashes included.
                if end == start + 1
                    && (b == b'e' || b == b'E')
                    && self.at(end) == Some(b'\'')
                    && matches!(self.dialect, Dialect::PostgreSql | Dialect::Generic)
                {
                    let mut t = self.quoted(end, b'\'', true, true);
                    t.start = start;
                    t
                } else {
                    self.token(Kind::Word, start, end, end, end)
                }
            }
            _ => self.token(Kind::Punct(b), start, start + 1, start + 1, start + 1),
        };
        self.pos = token.end.max(start + 1);
        Some(token)
    }

    fn quoted(&self, start: usize, quote: u8, backslash: bool, string: bool) -> Token {
        let (end, closed) = match self.settings.multibyte {
            None => scan_quoted(self.src, start + 1, quote, backslash),
            Some(mb) => scan_quoted_multibyte(self.src, start + 1, quote, backslash, mb),
        };
        let content_end = if closed { end - 1 } else { end };
        let kind = if string {
            Kind::Str { quote, backslash }
        } else {
            Kind::QuotedIdent
        };
        self.token(kind, start, end, start + 1, content_end)
    }

    fn token(
        &self,
        kind: Kind,
        start: usize,
        end: usize,
        content_start: usize,
        content_end: usize,
    ) -> Token {
        Token {
            kind,
            start,
            end,
            content_start,
            content_end: content_end.max(content_start),
        }
    }

    /// The length of a dollar-quote delimiter at `start` (`$$` or `$tag$`), if one is there.
    fn dollar_tag(&self, start: usize) -> Option<usize> {
        let mut i = start + 1;
        if self.at(i) != Some(b'$') {
            if !self.at(i).is_some_and(word_start) {
                return None;
            }
            while self
                .at(i)
                .is_some_and(|c| word_start(c) || c.is_ascii_digit())
            {
                i += 1;
            }
            if self.at(i) != Some(b'$') {
                return None;
            }
        }
        Some(i + 1 - start)
    }
}

fn word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// From `from` (just after an opening `quote`), the position after the closing quote, or
/// the text's end; and whether it was closed. A doubled quote is one quote character; with
/// `backslash`, a backslash escapes the next byte.
pub(crate) fn scan_quoted(src: &[u8], from: usize, quote: u8, backslash: bool) -> (usize, bool) {
    let mut i = from;
    loop {
        let rest = src.get(i..).unwrap_or_default();
        let found = if backslash {
            memchr2(quote, b'\\', rest)
        } else {
            memchr(quote, rest)
        };
        let Some(off) = found else {
            return (src.len(), false);
        };
        let j = i + off;
        if src.get(j) == Some(&b'\\') && quote != b'\\' {
            i = j + 2;
            continue;
        }
        if src.get(j + 1) == Some(&quote) {
            i = j + 2;
            continue;
        }
        return (j + 1, true);
    }
}

/// [`scan_quoted`] in a multibyte character set: a character's second byte is never an
/// escape or a quote.
fn scan_quoted_multibyte(
    src: &[u8],
    from: usize,
    quote: u8,
    backslash: bool,
    mb: Multibyte,
) -> (usize, bool) {
    let mut i = from;
    while let Some(&b) = src.get(i) {
        match src.get(i + 1) {
            Some(&next) if mb.pair(b, next) => i += 2,
            next if b == b'\\' && backslash && quote != b'\\' => {
                i += if next.is_some() { 2 } else { 1 }
            }
            Some(&next) if b == quote && next == quote => i += 2,
            _ if b == quote => return (i + 1, true),
            _ => i += 1,
        }
    }
    (src.len(), false)
}

/// A token of code, as [`visit_code`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeToken<'a> {
    /// A keyword or identifier, or a quoted identifier's content (escapes as written).
    Word(&'a [u8]),
    /// Any other token outside string literals and comments; `top_level` when it is not
    /// inside a dollar-quoted body. `semicolon` for `;`.
    Other { top_level: bool, semicolon: bool },
    /// A dollar-quoted body nested deeper than [`MAX_NESTING`]: not visited.
    TooDeep,
}

/// Visits the code of SQL text: words and punctuation outside string literals and
/// comments, and inside dollar-quoted bodies (`DO $$ ... $$`, function bodies), which are
/// code, nested at most [`MAX_NESTING`] deep. String literals are data and are skipped.
/// Stops when `f` breaks. Linear in the text's length.
pub(crate) fn visit_code<'a>(
    src: &'a [u8],
    dialect: Dialect,
    f: &mut dyn FnMut(CodeToken<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    visit_code_at(src, dialect, 0, f)
}

fn visit_code_at<'a>(
    src: &'a [u8],
    dialect: Dialect,
    depth: usize,
    f: &mut dyn FnMut(CodeToken<'a>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut lexer = Lexer::new(src, dialect);
    while let Some(t) = lexer.next_token() {
        let text = |a: usize, b: usize| src.get(a..b).unwrap_or_default();
        match t.kind {
            Kind::Str { .. } => {}
            Kind::Word => f(CodeToken::Word(text(t.start, t.end)))?,
            Kind::QuotedIdent => f(CodeToken::Word(text(t.content_start, t.content_end)))?,
            Kind::Dollar if depth < MAX_NESTING => {
                visit_code_at(text(t.content_start, t.content_end), dialect, depth + 1, f)?;
            }
            Kind::Dollar => f(CodeToken::TooDeep)?,
            Kind::Number | Kind::Punct(_) => f(CodeToken::Other {
                top_level: depth == 0,
                semicolon: t.kind == Kind::Punct(b';'),
            })?,
        }
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_comments_strings_and_dollar_bodies_as_one_token_each() {
        let src = "a /* x /* y */ z */ 'it''s' E'a\\'b' $t$ $$ $t$ \"q\"\"i\" -- c\n$1 1.5e3 ;";
        let mut lexer = Lexer::new(src.as_bytes(), Dialect::PostgreSql);
        let mut kinds = Vec::new();
        while let Some(t) = lexer.next_token() {
            kinds.push((t.kind, &src[t.start..t.end]));
        }
        let s = |backslash| Kind::Str {
            quote: b'\'',
            backslash,
        };
        assert_eq!(
            kinds,
            [
                (Kind::Word, "a"),
                (s(false), "'it''s'"),
                (s(true), "E'a\\'b'"),
                (Kind::Dollar, "$t$ $$ $t$"),
                (Kind::QuotedIdent, "\"q\"\"i\""),
                (Kind::Number, "$1"),
                (Kind::Number, "1.5e3"),
                (Kind::Punct(b';'), ";"),
            ]
        );
    }
}
