//! What a server will execute for a statement's text: the texts the guardrails judge.
//!
//! The text a client sends is not always the SQL a server runs. MySQL and MariaDB run the
//! text of executable comments (`/*!50000 DROP TABLE t */`) and skip that of versioned
//! ones newer than themselves (`DELETE FROM t /*!99999 WHERE 1 = 0 */`); a session's
//! settings move where literals end (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`,
//! `standard_conforming_strings`, a multibyte character set taking a backslash into a
//! character); and dynamic SQL runs a literal's text (`PREPARE s FROM '...'`, `EXECUTE
//! IMMEDIATE '...'`, `DO $$ ... EXECUTE '...' $$`, a function body). [`read`] gives every
//! reading of the text a server could take, each as canonical SQL that `sqlparser` reads
//! the same way (comments gone, every literal in its plain quoted form), and reads the
//! literals the server runs as code the same way, as views of their own:
//!
//! ```text
//!  text ──for each reading (settings x executable-comment versions)──► view (canonical SQL)
//!                                                                        │
//!      literals run as code (PREPARE FROM '..', EXECUTE IMMEDIATE '..', DO '..',
//!      CREATE FUNCTION .. AS '..', PL/pgSQL EXECUTE '..', dblink_exec('..')) ◄┘
//!        └──► read again: views that are not top level
//!  dynamic SQL from anything but a literal, a body in another language, too many
//!  readings ──► opaque (why): nothing tells what runs
//! ```
//!
//! Every reading is judged; a statement passes a rule only if every reading does. A
//! reading no server takes costs at most a refusal, never a statement run unjudged.

use std::collections::HashSet;

use crate::lexer::{Dialect, Kind, Lexer, Multibyte, Server, Settings, Token};
use crate::literal::{bit_bytes, hex_bytes, read_string, undouble, unicode_escapes};

/// Dynamic SQL inside dynamic SQL is read this deep (a `PREPARE` in a procedure created
/// by a `DO` block is 3); deeper is opaque.
const MAX_DEPTH: usize = 3;

/// Readings of one statement, all levels together. A text of every kind of ambiguity at
/// once (backslashes, double quotes, dollars, multibyte characters and executable comments
/// of many versions) reads more ways than this: it is opaque instead, so that no text
/// makes the judge parse it unboundedly often.
const MAX_PASSES: usize = 64;

/// Distinct views kept, all levels together; past this the statement is opaque.
const MAX_VIEWS: usize = 16;

/// Bytes read over all passes: four times the text, plus this, bounds the work per
/// statement whatever its ambiguity.
const SLACK: usize = 64 * 1024;

/// The lowest server version modelled: MySQL 5.0 (executable comments for older versions
/// always run).
const OLDEST_SERVER: u32 = 50_000;

/// Functions that run SQL text given as an argument: the text is judged as a statement.
const SQL_TEXT_FUNCTIONS_PG: [&str; 7] = [
    "dblink",
    "dblink_exec",
    "dblink_open",
    "dblink_send_query",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
];

/// MySQL's `sys.execute_prepared_stmt(text)`.
const SQL_TEXT_FUNCTIONS_MYSQL: [&str; 1] = ["execute_prepared_stmt"];

/// Charset introducers whose strings are the text as sent (ASCII-compatible encodings):
/// a string in another (`_utf16 X'0044...'`) reads as other characters.
const TEXT_INTRODUCERS: [&str; 6] = [
    "_utf8", "_utf8mb3", "_utf8mb4", "_latin1", "_ascii", "_binary",
];

/// Why a statement cannot be judged.
pub(crate) type Opaque = &'static str;

const NOT_LITERAL: Opaque = "it runs SQL text that is not a literal";
const OTHER_LANGUAGE: Opaque = "it holds code in a language other than SQL and PL/pgSQL";
const NOT_TEXT: Opaque = "it runs a literal that is not UTF-8 text";
const TOO_DEEP: Opaque = "its dynamic SQL is nested too deep";
const TOO_MANY: Opaque = "it reads too many ways";
const NUL: Opaque = "it holds a NUL byte outside literals";

/// One reading of a text: canonical SQL, and whether it is the text the client sent (`top
/// level`) or a literal's text it runs.
#[derive(Debug)]
pub(crate) struct View {
    /// Canonical SQL: no comments, literals plain, tokens spaced as sent.
    pub(crate) sql: String,
    /// The statements the client sent, as opposed to dynamic SQL and bodies they hold.
    pub(crate) top_level: bool,
}

/// Every reading of a statement: the views, and why it cannot be judged at all, if so.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    pub(crate) views: Vec<View>,
    pub(crate) opaque: Option<Opaque>,
}

impl Reading {
    /// The reading of a text that reads one way, as sent ([`reads_as_sent`]).
    pub(crate) fn as_sent(sql: &str) -> Self {
        Self {
            views: vec![View {
                sql: sql.to_owned(),
                top_level: true,
            }],
            opaque: None,
        }
    }
}

/// Whether `sql` reads one way on every server and setting, exactly as sent, so that
/// `sqlparser` may read it as it is: printable ASCII (tabs and line ends too) without a
/// comment, a backslash, a dollar quote (`$` before anything but a digit), MySQL's `#` or
/// double quotes. The caller checks that nothing in it runs a literal as SQL (no `PREPARE`,
/// `DO`, ...). Most statements clients send are such (pgbench's, sysbench's), and skip the
/// reading's lexing and copies.
pub(crate) fn reads_as_sent(sql: &str, dialect: Dialect) -> bool {
    let bytes = sql.as_bytes();
    let mysql = dialect == Dialect::MySql;
    bytes.iter().enumerate().all(|(i, &b)| {
        let next = bytes.get(i + 1).copied();
        match b {
            b'\\' | 0x7f.. => false,
            b'#' | b'"' => !mysql,
            b'$' => next.is_some_and(|n| n.is_ascii_digit()),
            b'-' => next != Some(b'-'),
            b'/' => next != Some(b'*'),
            b'\t' | b'\n' | b'\r' | b' '..=b'~' => true,
            _ => false,
        }
    })
}

/// Reads `sql` as every server and session setting could (see the module docs).
pub(crate) fn read(sql: &str, dialect: Dialect) -> Reading {
    let mut reader = Reader {
        dialect,
        reading: Reading::default(),
        units: HashSet::new(),
        passes: 0,
        bytes_left: sql.len().saturating_mul(4).saturating_add(SLACK),
    };
    reader.unit(sql, 0, false);
    reader.reading
}

struct Reader {
    dialect: Dialect,
    reading: Reading,
    /// Literal texts already read as code, and whether as procedural code.
    units: HashSet<(String, bool)>,
    passes: usize,
    bytes_left: usize,
}

impl Reader {
    fn opaque(&mut self, why: Opaque) {
        self.reading.opaque.get_or_insert(why);
    }

    /// Reads one text: the statement (depth 0) or a literal it runs.
    fn unit(&mut self, text: &str, depth: usize, procedural: bool) {
        if depth > MAX_DEPTH {
            self.opaque(TOO_DEEP);
            return;
        }
        for settings in settings_for(text, self.dialect) {
            if self.passes >= MAX_PASSES || self.bytes_left < text.len() {
                self.opaque(TOO_MANY);
                return;
            }
            self.passes += 1;
            self.bytes_left -= text.len();
            let built = build(text, self.dialect, settings, procedural);
            if let Some(why) = built.opaque {
                self.opaque(why);
            }
            // Few views: a linear search beats hashing each (most statements read one way).
            if !self.reading.views.iter().any(|v| v.sql == built.sql) {
                if self.reading.views.len() >= MAX_VIEWS {
                    self.opaque(TOO_MANY);
                    return;
                }
                self.reading.views.push(View {
                    sql: built.sql,
                    top_level: depth == 0,
                });
            }
            for (code, procedural) in built.units {
                if self.units.insert((code.clone(), procedural)) {
                    self.unit(&code, depth + 1, procedural);
                }
            }
        }
    }
}

/// The settings a text reads differently under: each dimension only when the text holds
/// the byte it turns on (a backslash, a double quote, a dollar, a byte past ASCII before a
/// backslash or backtick, an executable comment).
fn settings_for(text: &str, dialect: Dialect) -> Vec<Settings> {
    let bytes = text.as_bytes();
    let has = |b: u8| memchr::memchr(b, bytes).is_some();
    let base = Settings::of(dialect);
    let mut all = vec![base];
    let vary = |all: &mut Vec<Settings>, f: &dyn Fn(&mut Settings)| {
        let more: Vec<Settings> = all
            .iter()
            .map(|s| {
                let mut s = *s;
                f(&mut s);
                s
            })
            .collect();
        all.extend(more);
    };
    match dialect {
        Dialect::MySql => {
            if has(b'\\') {
                vary(&mut all, &|s| s.backslash = false);
            }
            if has(b'"') {
                vary(&mut all, &|s| s.ansi_quotes = true);
            }
            if has(b'$') {
                vary(&mut all, &|s| s.dollar_quotes = true);
            }
            if multibyte_sensitive(bytes, b"\\`") {
                let plain = all.clone();
                for mb in [Multibyte::Gbk, Multibyte::ShiftJis, Multibyte::Big5] {
                    all.extend(plain.iter().map(|s| Settings {
                        multibyte: Some(mb),
                        ..*s
                    }));
                }
            }
            let servers = servers_for(bytes);
            all.iter()
                .flat_map(|s| {
                    servers.iter().map(move |server| Settings {
                        server: Some(*server),
                        ..*s
                    })
                })
                .collect()
        }
        Dialect::PostgreSql | Dialect::Generic => {
            if has(b'\\') {
                vary(&mut all, &|s| s.backslash = true);
            }
            if multibyte_sensitive(bytes, b"\\") {
                let plain = all.clone();
                for mb in [
                    Multibyte::Gbk,
                    Multibyte::ShiftJis,
                    Multibyte::Big5,
                    Multibyte::Johab,
                ] {
                    all.extend(plain.iter().map(|s| Settings {
                        multibyte: Some(mb),
                        ..*s
                    }));
                }
            }
            all
        }
        Dialect::MsSql | Dialect::Sqlite => all,
    }
}

/// Whether a byte past ASCII comes right before one of `ascii`: only then can a multibyte
/// character set read the text differently from UTF-8.
fn multibyte_sensitive(bytes: &[u8], ascii: &[u8]) -> bool {
    bytes
        .windows(2)
        .any(|w| w[0] >= 0x80 && ascii.contains(&w[1]))
}

/// The servers whose readings of MySQL executable comments differ for this text: MySQL
/// and MariaDB, at the oldest version modelled, at each version a comment names, and at
/// the newest. A text without executable comments reads the same on every one.
fn servers_for(bytes: &[u8]) -> Vec<Server> {
    let newest = |mariadb| Server {
        mariadb,
        version: u32::MAX,
    };
    let mut versions: Vec<u32> = Vec::new();
    for prefix in [&b"/*!"[..], b"/*M!"] {
        for at in memchr::memmem::find_iter(bytes, prefix) {
            let digits: Vec<u32> = bytes
                .get(at + prefix.len()..)
                .unwrap_or_default()
                .iter()
                .take(6)
                .take_while(|b| b.is_ascii_digit())
                .map(|b| u32::from(b - b'0'))
                .collect();
            if digits.len() >= 5 {
                versions.push(digits.iter().take(5).fold(0, |n, d| n * 10 + d));
                if digits.len() == 6 {
                    versions.push(digits.iter().fold(0, |n, d| n * 10 + d));
                }
            }
        }
    }
    if memchr::memmem::find(bytes, b"/*!").is_none()
        && memchr::memmem::find(bytes, b"/*M!").is_none()
    {
        return vec![newest(true)];
    }
    versions.push(OLDEST_SERVER);
    versions.retain(|&v| v >= OLDEST_SERVER);
    versions.sort_unstable();
    versions.dedup();
    let mut servers = Vec::with_capacity(2 * (versions.len() + 1));
    for mariadb in [false, true] {
        servers.extend(versions.iter().map(|&version| Server { mariadb, version }));
        servers.push(newest(mariadb));
    }
    servers
}

/// A token of a reading, as emitted in the canonical SQL.
#[derive(Debug)]
enum Tok<'a> {
    Word(&'a str),
    Number(&'a str),
    Punct(u8),
    /// A string literal (adjacent ones joined), or a dollar-quoted one: its text, or why
    /// it is not text; and how it is written in the canonical SQL.
    Lit {
        text: Result<String, Opaque>,
        canonical: String,
    },
    /// A quoted identifier, canonical.
    Ident(String),
}

/// A token of the reading and whether space came before it in the text.
#[derive(Debug)]
struct Spaced<'a> {
    tok: Tok<'a>,
    space: bool,
}

/// One reading: canonical SQL, the literals it runs as code, and why it cannot be judged.
struct Built {
    sql: String,
    units: Vec<(String, bool)>,
    opaque: Option<Opaque>,
}

fn build(text: &str, dialect: Dialect, settings: Settings, procedural: bool) -> Built {
    let src = text.as_bytes();
    let mut lexer = Lexer::with(src, dialect, settings);
    let mut raw: Vec<Raw> = Vec::with_capacity(text.len() / 4 + 4);
    while let Some(token) = lexer.next_token() {
        let (space, newline, block) = lexer.space_before();
        raw.push((token, space, newline, block));
    }
    let mut opaque = lexer.ambiguity();
    let toks = tokens(text, dialect, settings.multibyte, &raw, &mut opaque);
    let sql = canonical(&toks, dialect, text.len());
    let mut units = Vec::new();
    extract(&toks, dialect, procedural, &mut units, &mut opaque);
    Built { sql, units, opaque }
}

fn slice(text: &str, start: usize, end: usize) -> &str {
    text.get(start..end).unwrap_or_default()
}

/// A lexer token with what came before it: whitespace or a comment, a line end among
/// it, a block comment among it.
type Raw = (Token, bool, bool, bool);

/// The lexer's tokens as a reading's: prefixed and adjacent string literals joined and
/// decoded, quoted identifiers canonical.
fn tokens<'a>(
    text: &'a str,
    dialect: Dialect,
    multibyte: Option<Multibyte>,
    raw: &[Raw],
    opaque: &mut Option<Opaque>,
) -> Vec<Spaced<'a>> {
    let mut reading = Tokens {
        text,
        dialect,
        multibyte,
        raw,
        opaque,
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&(_, space, _, _)) = raw.get(i) {
        let (tok, next) = reading.at(i);
        out.push(Spaced { tok, space });
        i = next.max(i + 1);
    }
    out
}

/// Turns the lexer's tokens into a reading's, a token (and those it takes in) at a time.
struct Tokens<'a, 'r> {
    text: &'a str,
    dialect: Dialect,
    multibyte: Option<Multibyte>,
    raw: &'r [Raw],
    opaque: &'r mut Option<Opaque>,
}

impl<'a> Tokens<'a, '_> {
    fn raw(&self, i: usize) -> Option<Token> {
        self.raw.get(i).map(|r| r.0)
    }

    fn text(&self, start: usize, end: usize) -> &'a str {
        slice(self.text, start, end)
    }

    fn pg(&self) -> bool {
        matches!(self.dialect, Dialect::PostgreSql | Dialect::Generic)
    }

    fn mysql(&self) -> bool {
        self.dialect == Dialect::MySql
    }

    /// The reading's token at `raw[i]`, and the index after what it took in.
    fn at(&mut self, i: usize) -> (Tok<'a>, usize) {
        let Some(t) = self.raw(i) else {
            return (Tok::Punct(b' '), i + 1);
        };
        let word = self.text(t.start, t.end);
        let next = self.raw(i + 1);
        let adjacent = |kinds: fn(Kind) -> bool| next.filter(|n| n.start == t.end && kinds(n.kind));
        let single_quoted = |k: Kind| matches!(k, Kind::Str { quote: b'\'', .. });
        match t.kind {
            Kind::Word
                if self.pg()
                    && word.eq_ignore_ascii_case("u")
                    && adjacent(|k| k == Kind::Punct(b'&')).is_some() =>
            {
                self.unicode(i)
            }
            Kind::Word if matches!(word, "x" | "X" | "b" | "B") => match adjacent(single_quoted) {
                Some(digits) => (self.hex_or_bits(t, digits), i + 2),
                None => (Tok::Word(word), i + 1),
            },
            Kind::Word if word.eq_ignore_ascii_case("n") && adjacent(single_quoted).is_some() => {
                self.introduced(word, i)
            }
            Kind::Word
                if self.mysql()
                    && word.starts_with('_')
                    && next.is_some_and(|n| matches!(n.kind, Kind::Str { .. })) =>
            {
                self.introduced(word, i)
            }
            // A word holding a multibyte character that took in a backslash or backtick: a
            // quoted identifier, so the canonical SQL reads the same in UTF-8.
            Kind::Word
                if self.multibyte.is_some()
                    && !word.is_ascii()
                    && word.bytes().any(|b| b == b'\\' || b == b'`') =>
            {
                (Tok::Ident(quote_ident(word, self.ident_quote())), i + 1)
            }
            Kind::Word => (Tok::Word(word), i + 1),
            Kind::Number => (Tok::Number(word), i + 1),
            Kind::Punct(b) => {
                if b == 0 {
                    self.opaque.get_or_insert(NUL);
                }
                (Tok::Punct(b), i + 1)
            }
            Kind::Str { .. } => {
                let (text, canonical, next) = self.joined(i);
                (Tok::Lit { text, canonical }, next)
            }
            Kind::Dollar => {
                let body = self.text(t.content_start, t.content_end);
                let canonical = if self.pg() {
                    // PostgreSQL's sqlparser reads them; the guardrails' scan of a reading
                    // sqlparser cannot parse takes their bodies for code.
                    word.to_owned()
                } else {
                    quote_string(body, self.dialect)
                };
                let text = Ok(body.to_owned());
                (Tok::Lit { text, canonical }, i + 1)
            }
            Kind::QuotedIdent => {
                let tok = match self.text.as_bytes().get(t.start).copied() {
                    Some(quote @ (b'"' | b'`')) => {
                        let content = self.text(t.content_start, t.content_end);
                        let name = undouble(content, char::from(quote));
                        Tok::Ident(quote_ident(&name, self.ident_quote()))
                    }
                    _ => Tok::Ident(word.to_owned()),
                };
                (tok, i + 1)
            }
        }
    }

    /// The quote of the dialect's canonical identifiers.
    fn ident_quote(&self) -> char {
        if self.mysql() { '`' } else { '"' }
    }

    /// PostgreSQL's `U&'...'` or `U&"..."` at `raw[i]` (the `U`), with an optional
    /// `UESCAPE 'c'`.
    fn unicode(&mut self, i: usize) -> (Tok<'a>, usize) {
        let u = self.raw(i).map_or("", |t| self.text(t.start, t.end));
        let Some(quoted) = self.raw(i + 2).filter(|q| {
            self.raw(i + 1).is_some_and(|amp| q.start == amp.end)
                && matches!(
                    q.kind,
                    Kind::Str {
                        quote: b'\'',
                        backslash: false
                    } | Kind::QuotedIdent
                )
        }) else {
            return (Tok::Word(u), i + 1);
        };
        let mut next = i + 3;
        let mut escape = '\\';
        if let (Some(word), Some(c)) = (self.raw(next), self.raw(next + 1))
            && word.kind == Kind::Word
            && self
                .text(word.start, word.end)
                .eq_ignore_ascii_case("uescape")
            && matches!(c.kind, Kind::Str { .. })
        {
            let mut chars = self.text(c.content_start, c.content_end).chars();
            if let (Some(e), None) = (chars.next(), chars.next()) {
                escape = e;
            }
            next += 2;
        }
        let identifier = quoted.kind == Kind::QuotedIdent;
        let content = undouble(
            self.text(quoted.content_start, quoted.content_end),
            if identifier { '"' } else { '\'' },
        );
        let tok = match unicode_escapes(&content, escape) {
            Some(decoded) if identifier => Tok::Ident(quote_ident(&decoded, '"')),
            Some(decoded) => Tok::Lit {
                canonical: quote_string(&decoded, self.dialect),
                text: Ok(decoded),
            },
            // The server refuses an invalid escape.
            None => {
                self.opaque.get_or_insert(NOT_TEXT);
                Tok::Word(u)
            }
        };
        (tok, next)
    }

    /// `X'..'` or `B'..'`: MySQL's hex and bit strings are text; PostgreSQL's are bit
    /// strings.
    fn hex_or_bits(&self, prefix: Token, digits: Token) -> Tok<'a> {
        let hex = self
            .text(prefix.start, prefix.end)
            .eq_ignore_ascii_case("x");
        let content = self.text(digits.content_start, digits.content_end);
        let bytes = if hex {
            hex_bytes(content)
        } else {
            bit_bytes(content)
        };
        Tok::Lit {
            text: if self.mysql() {
                text_of(bytes)
            } else {
                Err(NOT_TEXT)
            },
            canonical: self.text(prefix.start, digits.end).to_owned(),
        }
    }

    /// `N'..'`, or MySQL's charset introducer (`_utf8mb4'..'`, also spaced), at `raw[i]`,
    /// with the strings joined to it. An introducer of another encoding than the text's
    /// (`_utf16`) makes other characters of the same bytes: not text.
    fn introduced(&self, word: &'a str, i: usize) -> (Tok<'a>, usize) {
        let (literal, canonical, next) = self.joined(i + 1);
        let foreign = word.starts_with('_')
            && !TEXT_INTRODUCERS
                .iter()
                .any(|c| word.eq_ignore_ascii_case(c));
        let gap = if self.raw.get(i + 1).is_some_and(|r| r.1) {
            " "
        } else {
            ""
        };
        let tok = Tok::Lit {
            text: if foreign { Err(NOT_TEXT) } else { literal },
            canonical: format!("{word}{gap}{canonical}"),
        };
        (tok, next)
    }

    /// The string literal at `raw[i]` and those the server joins to it (MySQL: any that
    /// follow; PostgreSQL: those after whitespace holding a line end), decoded; its
    /// canonical form; and the index after them.
    fn joined(&self, mut i: usize) -> (Result<String, Opaque>, String, usize) {
        let mut bytes = Vec::new();
        let mut first = true;
        while let Some(&(t, _, newline, block)) = self.raw.get(i) {
            let Kind::Str { quote, backslash } = t.kind else {
                break;
            };
            if !first && !self.mysql() && (!newline || block) {
                break;
            }
            let content = self
                .text
                .as_bytes()
                .get(t.content_start..t.content_end)
                .unwrap_or_default();
            bytes.extend(read_string(
                content,
                quote,
                backslash,
                self.dialect,
                self.multibyte,
            ));
            first = false;
            i += 1;
        }
        let decoded = text_of(bytes);
        // Not text: the bytes the server reads are not ours to write; an empty literal
        // stands in (it is data, and its text is opaque wherever it runs).
        let canonical = quote_string(decoded.as_deref().unwrap_or_default(), self.dialect);
        (decoded, canonical, i)
    }
}

fn text_of(bytes: Vec<u8>) -> Result<String, Opaque> {
    String::from_utf8(bytes).map_err(|_| NOT_TEXT)
}

/// A string literal sqlparser reads back as `text` in the dialect.
fn quote_string(text: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if dialect == Dialect::MySql => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A quoted identifier naming `name`.
fn quote_ident(name: &str, quote: char) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push(quote);
    for c in name.chars() {
        if c == quote {
            out.push(quote);
        }
        out.push(c);
    }
    out.push(quote);
    out
}

/// The reading's canonical SQL: tokens as written (literals and quoted identifiers in
/// their plain form), one space where the text had whitespace or comments.
fn canonical(toks: &[Spaced<'_>], dialect: Dialect, len: usize) -> String {
    let mut out = String::with_capacity(len + 8);
    let mut previous: Option<&Tok<'_>> = None;
    for Spaced { tok, space } in toks {
        let joined_dashes = dialect == Dialect::MySql
            && matches!((previous, tok), (Some(Tok::Punct(b'-')), Tok::Punct(b'-')));
        // A word right before a literal it was not written with (`X"41"` in MySQL is a
        // column and a string, `X'41'` a hex literal).
        let word_then_literal = matches!(
            (previous, tok),
            (
                Some(Tok::Word(_) | Tok::Number(_)),
                Tok::Lit { .. } | Tok::Ident(_)
            )
        );
        if previous.is_some() && (*space || joined_dashes || word_then_literal) {
            out.push(' ');
        }
        match tok {
            Tok::Word(w) | Tok::Number(w) => out.push_str(w),
            Tok::Punct(b) => out.push(char::from(*b)),
            Tok::Lit { canonical, .. } => out.push_str(canonical),
            Tok::Ident(name) => out.push_str(name),
        }
        previous = Some(tok);
    }
    out
}

/// What a literal expression at `toks[i]` is: text (and the index after it), not text, or
/// not a literal at all.
enum Literal {
    Text(String, usize),
    NotText,
    No,
}

fn literal_at(toks: &[Spaced<'_>], i: usize, dialect: Dialect) -> Literal {
    let after = |j: usize| {
        // MySQL: `'...' COLLATE name` is the same text.
        if dialect == Dialect::MySql && is_word(toks, j, "collate") {
            j + 2
        } else {
            j
        }
    };
    match toks.get(i).map(|t| &t.tok) {
        Some(Tok::Lit { text: Ok(text), .. }) => Literal::Text(text.clone(), after(i + 1)),
        Some(Tok::Lit { text: Err(_), .. }) => Literal::NotText,
        Some(Tok::Number(n)) if dialect == Dialect::MySql && n.len() > 2 => {
            let (prefix, digits) = n.split_at(2);
            let bytes = if prefix.eq_ignore_ascii_case("0x") {
                hex_bytes(digits)
            } else if prefix.eq_ignore_ascii_case("0b") {
                bit_bytes(digits)
            } else {
                return Literal::No;
            };
            match text_of(bytes) {
                Ok(text) => Literal::Text(text, after(i + 1)),
                Err(_) => Literal::NotText,
            }
        }
        _ => Literal::No,
    }
}

fn is_word(toks: &[Spaced<'_>], i: usize, word: &str) -> bool {
    matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
}

fn is_punct(toks: &[Spaced<'_>], i: usize, p: u8) -> bool {
    matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Punct(b)) if *b == p)
}

/// The end of a statement at `i`: the text's end or a `;`.
fn ends(toks: &[Spaced<'_>], i: usize) -> bool {
    i >= toks.len() || is_punct(toks, i, b';')
}

/// A name token's text, lowercase: a word, a quoted identifier or a string.
fn name_at(toks: &[Spaced<'_>], i: usize) -> Option<String> {
    match toks.get(i).map(|t| &t.tok)? {
        Tok::Word(w) => Some(w.to_ascii_lowercase()),
        Tok::Ident(q) => Some(q.trim_matches(['"', '`']).to_ascii_lowercase()),
        Tok::Lit { text: Ok(t), .. } => Some(t.to_ascii_lowercase()),
        _ => None,
    }
}

/// Collects the literals a reading runs as code (see the module docs); marks dynamic SQL
/// whose text is not a literal opaque.
fn extract(
    toks: &[Spaced<'_>],
    dialect: Dialect,
    procedural: bool,
    units: &mut Vec<(String, bool)>,
    opaque: &mut Option<Opaque>,
) {
    let mysql = dialect == Dialect::MySql;
    let pg = matches!(dialect, Dialect::PostgreSql | Dialect::Generic);
    if !mysql && !pg {
        return;
    }
    for i in 0..toks.len() {
        // MySQL: PREPARE name FROM <text>; MariaDB: EXECUTE IMMEDIATE <text>.
        let from = if mysql && is_word(toks, i, "prepare") && is_word(toks, i + 2, "from") {
            Some(i + 3)
        } else if mysql && is_word(toks, i, "execute") && is_word(toks, i + 1, "immediate") {
            Some(i + 2)
        } else if pg
            && procedural
            && is_word(toks, i, "execute")
            && !["on", "function", "procedure"]
                .iter()
                .any(|w| is_word(toks, i + 1, w))
        {
            // PL/pgSQL: EXECUTE <text> [INTO ...] [USING ...].
            Some(i + 1)
        } else {
            None
        };
        if let Some(at) = from {
            match literal_at(toks, at, dialect) {
                Literal::Text(code, next)
                    if ends(toks, next)
                        || is_word(toks, next, "using")
                        || is_word(toks, next, "into") =>
                {
                    units.push((code, false));
                }
                Literal::NotText => {
                    opaque.get_or_insert(NOT_TEXT);
                }
                _ => {
                    opaque.get_or_insert(NOT_LITERAL);
                }
            }
            continue;
        }
        // Functions that run their argument's SQL text.
        if let Some(Tok::Word(name)) = toks.get(i).map(|t| &t.tok)
            && is_punct(toks, i + 1, b'(')
        {
            let known: &[&str] = if mysql {
                &SQL_TEXT_FUNCTIONS_MYSQL
            } else {
                &SQL_TEXT_FUNCTIONS_PG
            };
            if known.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                arguments(toks, i + 2, dialect, units, opaque);
                continue;
            }
        }
        // PostgreSQL: DO [LANGUAGE name] <body> [LANGUAGE name].
        if pg && is_word(toks, i, "do") {
            let mut at = i + 1;
            let mut language = None;
            if is_word(toks, at, "language") {
                language = name_at(toks, at + 1);
                at += 2;
            }
            match literal_at(toks, at, dialect) {
                Literal::Text(body, next) => {
                    if is_word(toks, next, "language") {
                        language = name_at(toks, next + 1);
                    }
                    match language.as_deref().unwrap_or("plpgsql") {
                        "plpgsql" => units.push((body, true)),
                        "sql" => units.push((body, false)),
                        _ => {
                            opaque.get_or_insert(OTHER_LANGUAGE);
                        }
                    }
                }
                Literal::NotText => {
                    opaque.get_or_insert(NOT_TEXT);
                }
                Literal::No => {}
            }
            continue;
        }
        // CREATE [OR REPLACE] FUNCTION | PROCEDURE ... [LANGUAGE name] [AS <body>[, <link>]]
        if is_word(toks, i, "create") {
            routine(toks, i + 1, dialect, units, opaque);
        }
    }
}

/// The arguments of a call from `toks[i]` (after its `(`): each literal is judged as SQL,
/// constants pass, anything else is opaque.
fn arguments(
    toks: &[Spaced<'_>],
    mut i: usize,
    dialect: Dialect,
    units: &mut Vec<(String, bool)>,
    opaque: &mut Option<Opaque>,
) {
    loop {
        match literal_at(toks, i, dialect) {
            Literal::Text(code, next) => {
                units.push((code, false));
                i = next;
            }
            Literal::NotText => {
                opaque.get_or_insert(NOT_TEXT);
                return;
            }
            Literal::No => match toks.get(i).map(|t| &t.tok) {
                Some(Tok::Number(_)) => i += 1,
                Some(Tok::Word(w))
                    if ["true", "false", "null"]
                        .iter()
                        .any(|c| w.eq_ignore_ascii_case(c)) =>
                {
                    i += 1;
                }
                Some(Tok::Punct(b')')) => return,
                _ => {
                    opaque.get_or_insert(NOT_LITERAL);
                    return;
                }
            },
        }
        if is_punct(toks, i, b',') {
            i += 1;
        } else if is_punct(toks, i, b')') {
            return;
        } else {
            opaque.get_or_insert(NOT_LITERAL);
            return;
        }
    }
}

/// A `CREATE` statement from `toks[i]` (after `CREATE`): a function's or procedure's body
/// given as literals after `AS` is code in its `LANGUAGE` (SQL and PL/pgSQL are read; any
/// other is opaque).
fn routine(
    toks: &[Spaced<'_>],
    i: usize,
    dialect: Dialect,
    units: &mut Vec<(String, bool)>,
    opaque: &mut Option<Opaque>,
) {
    let end = (i..toks.len())
        .find(|&j| is_punct(toks, j, b';'))
        .unwrap_or(toks.len());
    let Some(kind) =
        (i..end).find(|&j| is_word(toks, j, "function") || is_word(toks, j, "procedure"))
    else {
        return;
    };
    if (i..kind).any(|j| is_punct(toks, j, b'(')) {
        return;
    }
    let mut language = None;
    let mut bodies = Vec::new();
    let mut depth = 0usize;
    let mut j = kind;
    while j < end {
        match toks.get(j).map(|t| &t.tok) {
            Some(Tok::Punct(b'(')) => depth += 1,
            Some(Tok::Punct(b')')) => depth = depth.saturating_sub(1),
            _ if depth == 0 && is_word(toks, j, "language") => {
                language = name_at(toks, j + 1);
            }
            _ if depth == 0 && is_word(toks, j, "as") => {
                let mut at = j + 1;
                while let Literal::Text(body, next) = literal_at(toks, at, dialect) {
                    bodies.push(body);
                    at = next;
                    if !is_punct(toks, at, b',') {
                        break;
                    }
                    at += 1;
                }
                if matches!(literal_at(toks, at, dialect), Literal::NotText) {
                    opaque.get_or_insert(NOT_TEXT);
                }
            }
            _ => {}
        }
        j += 1;
    }
    match language.as_deref() {
        Some("sql") => units.extend(bodies.into_iter().map(|b| (b, false))),
        // A body without a LANGUAGE is refused by PostgreSQL; read it as PL/pgSQL, the
        // stricter reading.
        Some("plpgsql") | None => units.extend(bodies.into_iter().map(|b| (b, true))),
        Some(_) => {
            opaque.get_or_insert(OTHER_LANGUAGE);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn views(sql: &str, dialect: Dialect) -> Vec<(String, bool)> {
        read(sql, dialect)
            .views
            .into_iter()
            .map(|v| (v.sql, v.top_level))
            .collect()
    }

    #[test]
    fn a_plain_statement_reads_one_way_without_its_comments() {
        assert_eq!(
            views(
                "SELECT /* c */ a,b -- d\nFROM t WHERE x = 'it''s'",
                Dialect::PostgreSql
            ),
            [("SELECT a,b FROM t WHERE x = 'it''s'".to_owned(), true)]
        );
        assert_eq!(
            views("SELECT `a` FROM t # c", Dialect::MySql),
            [("SELECT `a` FROM t".to_owned(), true)]
        );
        assert_eq!(read("SELECT 1", Dialect::MySql).opaque, None);
    }

    /// The texts that skip the reading: what sqlparser reads the way every server does.
    #[test]
    fn only_plain_ascii_without_comments_escapes_or_dollar_quotes_reads_as_sent() {
        for sql in [
            "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
            "SELECT a/b, c-d, 'x' FROM t WHERE e = \"f\"",
        ] {
            assert!(reads_as_sent(sql, Dialect::PostgreSql), "{sql}");
        }
        assert!(!reads_as_sent("SELECT \"f\"", Dialect::MySql));
        assert!(!reads_as_sent("SELECT 1 # c", Dialect::MySql));
        for sql in [
            "SELECT 1 -- c",
            "SELECT /* c */ 1",
            r"SELECT 'a\'",
            "SELECT $$a$$",
            "SELECT $q$a$q$",
            "SELECT 'caf\u{e9}'",
            "SELECT 1\0",
            "SELECT\x0b1",
        ] {
            assert!(!reads_as_sent(sql, Dialect::PostgreSql), "{sql:?}");
        }
    }

    #[test]
    fn literals_read_as_plain_strings_and_dynamic_sql_as_views_of_its_own() {
        assert_eq!(
            views(r"SELECT E'a\'b', $q$c$q$", Dialect::PostgreSql),
            [("SELECT 'a''b', $q$c$q$".to_owned(), true)]
        );
        assert_eq!(
            views(
                r#"SELECT U&'!0041' UESCAPE '!' FROM U&"t!0031" UESCAPE '!'"#,
                Dialect::PostgreSql
            ),
            [(r#"SELECT 'A' FROM "t1""#.to_owned(), true)]
        );
        assert_eq!(
            views("PREPARE s FROM _utf8mb4'DELETE FROM t'", Dialect::MySql),
            [
                ("PREPARE s FROM _utf8mb4'DELETE FROM t'".to_owned(), true),
                ("DELETE FROM t".to_owned(), false)
            ]
        );
    }

    #[test]
    fn executable_comments_read_as_each_server_version_would() {
        let read = views("DELETE FROM t /*!99999 WHERE a = 1 */", Dialect::MySql);
        let sql: Vec<&str> = read.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(sql, ["DELETE FROM t", "DELETE FROM t WHERE a = 1"]);
        let mariadb_only = views("SELECT 1 /*M!100000 + 2 */", Dialect::MySql);
        let sql: Vec<&str> = mariadb_only.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(sql, ["SELECT 1", "SELECT 1 + 2"]);
    }

    /// Every distinct version a text names is a reading; past the budget the statement is
    /// opaque, never read unboundedly often.
    #[test]
    fn a_text_of_many_readings_is_opaque() {
        let many: String = (0..40)
            .map(|i| format!("/*!{} {i} */", 50_000 + i))
            .collect();
        let reading = read(&format!("SELECT 1 {many}"), Dialect::MySql);
        assert_eq!(reading.opaque, Some(TOO_MANY));
        assert!(reading.views.len() <= MAX_VIEWS);
        let deep = "PREPARE s FROM 'PREPARE s FROM ''PREPARE s FROM ''''PREPARE s FROM ''''''''DROP TABLE t'''''''''''''";
        assert_eq!(read(deep, Dialect::MySql).opaque, Some(TOO_DEEP));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary text of the characters that matter: no panic, at most
        /// [`MAX_VIEWS`] views, and the work stays within the byte budget.
        #[test]
        fn any_text_reads_within_bounds(
            text in r"(\PC|[ '`$\\/*!#;\r\n\x00\x7fMU&E_]){0,80}",
            mysql in any::<bool>(),
        ) {
            let dialect = if mysql { Dialect::MySql } else { Dialect::PostgreSql };
            let reading = read(&text, dialect);
            prop_assert!(reading.views.len() <= MAX_VIEWS);
            prop_assert!(reading.views.first().is_some_and(|v| v.top_level));
        }
    }
}
