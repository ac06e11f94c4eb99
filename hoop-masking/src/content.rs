//! Masking beyond rows of cells: documents by field path, JSON bodies, and text that
//! streams in chunks (HTTP text bodies, terminal and byte-stream output).
//!
//! Every string value goes through the same masking as a cell ([`CellMasker::mask_cell`]'s
//! detectors, transforms and leak check); what is new is finding the values and their
//! field paths, which `masking.fields` rules match. No protocol is known here: a driver
//! decodes its messages into a [`Document`], a JSON body or stream chunks.

use std::borrow::Cow;

use bytes::Bytes;
use hoop_wire::event::{Document, Value};
use memchr::memmem;

use crate::columns::ValueKind;
use crate::detect::ColumnGates;
use crate::entity::EntityType;
use crate::masker::{CellMasker, CellOutcome};
use crate::policy::ColumnAction;

/// The deepest nesting read in a document or JSON body (MongoDB's own limit is 100
/// levels). A value nested deeper becomes null: it cannot be matched against field rules
/// without an unbounded path, so it is not let through unread.
pub const MAX_DEPTH: usize = 100;

/// How much of a long line's text is kept and scanned again with the next piece, so a
/// value straddling two pieces of a line past `masking.max_cell_bytes` is still found:
/// longer than any built-in entity but a private key's body (whose header suffices) or a
/// very long JWT.
pub const STREAM_OVERLAP: usize = 4096;

/// A line past `masking.max_cell_bytes` is masked in pieces of at least this many bytes,
/// so tiny chunks do not each rescan the overlap.
const LONG_LINE_PIECE: usize = 64 * 1024;

/// Where a value sits in a document: the names of the fields leading to it, from the
/// root. Array elements share their field's path (`orders.card` names the `card` of every
/// element of `orders`).
#[derive(Clone, Debug, Default)]
pub struct FieldPath {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl FieldPath {
    /// The root: no field yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Steps into field `name`.
    pub fn push(&mut self, name: &[u8]) {
        self.bytes.extend_from_slice(name);
        self.ends.push(self.bytes.len());
    }

    /// Steps back out of the last field (nothing at the root).
    pub fn pop(&mut self) {
        self.ends.pop();
        self.bytes.truncate(self.ends.last().copied().unwrap_or(0));
    }

    /// How many fields deep the path is.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True at the root.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i` of the path (0 is the outermost).
    pub(crate) fn segment(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    fn last(&self) -> Option<&[u8]> {
        self.len().checked_sub(1).map(|i| self.segment(i))
    }
}

/// A text stream being masked: the part of a line not yet complete, held back until its
/// end arrives. One per stream and direction, for [`CellMasker::mask_stream`].
#[derive(Debug, Default)]
pub struct TextStream {
    /// Bytes received but not yet masked (a line's beginning, or a private key block).
    pending: Vec<u8>,
    /// `pending` starts with a private key block whose END has not arrived.
    holding_key: bool,
    /// Inside a line longer than `masking.max_cell_bytes`, masked piece by piece.
    long_line: bool,
    /// The long line is a private key block: it ends after its END marker's line.
    in_key: bool,
    /// The end of the long line's last piece, scanned again with the next.
    overlap: Vec<u8>,
}

impl TextStream {
    /// A stream at its start.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held back, waiting for the end of their line.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl CellMasker {
    /// Masks one value at a field path: a field rule (`masking.fields`, first match wins)
    /// masks it whole or exempts it; otherwise a `Text` value's detected values are
    /// replaced (appended to `out` on [`CellOutcome::Replaced`]), and a `TypedText` value
    /// (a number rendered as text) with a detection becomes [`CellOutcome::Null`]. A
    /// `Binary` or `Structured` value cannot be read: untouched unless a rule masks it
    /// (then `Null`). The birth-date and passport detectors run for fields named for them,
    /// as for columns.
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{CellOutcome, FieldPath, Policy, ValueKind};
    /// let policy = Policy::from_json(r#"{"masking": {"fields": [{"paths": ["*.ssn"]}]}}"#)?.compile()?;
    /// let mut masker = policy.masker();
    /// let mut path = FieldPath::new();
    /// path.push(b"patient");
    /// path.push(b"ssn");
    /// let mut out = Vec::new();
    /// assert_eq!(masker.mask_field(&path, b"no digits", ValueKind::Text, &mut out), CellOutcome::Replaced);
    /// assert_eq!(out, b"[REDACTED:FIELD]");
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn mask_field(
        &mut self,
        path: &FieldPath,
        value: &[u8],
        kind: ValueKind,
        out: &mut Vec<u8>,
    ) -> CellOutcome {
        let inner = &self.policy().inner;
        if let Some((index, action, entity)) = inner.field_rule(path) {
            if action == ColumnAction::Exempt {
                return CellOutcome::Unchanged;
            }
            self.count(entity);
            let inner = &self.policy().inner;
            let transform = &inner.field_rules[index].transform;
            if kind != ValueKind::Text || transform.is_null() {
                return CellOutcome::Null;
            }
            transform.apply(&inner.entities[entity.index()].label, value, out);
            return CellOutcome::Replaced;
        }
        if self.policy().inner.matcher.is_empty() {
            return CellOutcome::Unchanged;
        }
        let gates = self.gates_for(path.last());
        match kind {
            ValueKind::Text => self.mask_scanned(value, gates, false, None, out),
            ValueKind::TypedText => self.mask_scanned(value, gates, true, None, out),
            ValueKind::Binary | ValueKind::Structured => CellOutcome::Unchanged,
        }
    }

    /// The birth-date and passport detectors for a field named `name`, as
    /// [`CompiledPolicy::plan`](crate::CompiledPolicy::plan) switches them on for columns.
    fn gates_for(&self, name: Option<&[u8]>) -> ColumnGates {
        let Some(name) = name else {
            return ColumnGates::default();
        };
        let inner = &self.policy().inner;
        let contains = |word: &[u8]| {
            name.windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word))
        };
        ColumnGates {
            date_of_birth: inner.matcher.id(EntityType::DateOfBirth).is_some()
                && (inner
                    .dob_columns
                    .iter()
                    .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
                    || contains(b"birth")),
            passport: inner.matcher.id(EntityType::UsPassport).is_some() && contains(b"passport"),
        }
    }

    /// Masks a document in place: every string value (by its field path, see
    /// [`mask_field`](Self::mask_field)), every number rendered as text (one holding a
    /// detected value becomes null), and every field name holding a detected value (the
    /// name is masked as text; rules match the name as it was). Opaque values are read by
    /// no detector; a field rule masking them makes them null. Returns whether anything
    /// changed.
    ///
    /// Bounded: each value is visited once (time linear in the document), and values
    /// nested deeper than [`MAX_DEPTH`] become null, so neither the path nor the
    /// recursion grows without bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use hoop_masking::Policy;
    /// use hoop_wire::event::{Document, Value};
    /// let policy = Policy::from_json("{}")?.compile()?;
    /// let mut masker = policy.masker();
    /// let mut doc = Document {
    ///     fields: vec![("contact".into(), Value::Text(Bytes::from_static(b"ada@example.com")))],
    /// };
    /// assert!(masker.mask_document(&mut doc));
    /// assert_eq!(doc.fields[0].1, Value::Text(Bytes::from_static(b"[REDACTED:EMAIL_ADDRESS]")));
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn mask_document(&mut self, document: &mut Document) -> bool {
        let mut path = FieldPath::new();
        let mut out = Vec::new();
        self.walk_document(document, &mut path, 1, &mut out)
    }

    fn walk_document(
        &mut self,
        document: &mut Document,
        path: &mut FieldPath,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        let mut changed = false;
        for (name, value) in &mut document.fields {
            path.push(name.as_bytes());
            changed |= self.walk_value(value, path, depth, out);
            path.pop();
            if let Cow::Owned(masked) = self.mask_text(name) {
                *name = masked;
                changed = true;
            }
        }
        changed
    }

    fn walk_value(
        &mut self,
        value: &mut Value,
        path: &mut FieldPath,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        if depth > MAX_DEPTH {
            return !matches!(std::mem::replace(value, Value::Null), Value::Null);
        }
        out.clear();
        let outcome = match value {
            Value::Null | Value::Bool(_) => CellOutcome::Unchanged,
            Value::Number { text, .. } => {
                self.mask_field(path, text.as_bytes(), ValueKind::TypedText, out)
            }
            Value::Text(text) => self.mask_field(path, text, ValueKind::Text, out),
            Value::Opaque { .. } => self.mask_field(path, &[], ValueKind::Binary, out),
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.walk_value(item, path, depth + 1, out);
                }
                return changed;
            }
            Value::Document(document) => {
                return self.walk_document(document, path, depth + 1, out);
            }
        };
        match outcome {
            CellOutcome::Unchanged => false,
            CellOutcome::Replaced if matches!(value, Value::Text(_)) => {
                *value = Value::Text(Bytes::copy_from_slice(out));
                true
            }
            CellOutcome::Replaced | CellOutcome::Null => {
                *value = Value::Null;
                true
            }
        }
    }

    /// Masks a JSON body (an HTTP request's or response's, a document as JSON text), whole:
    /// string values by their field path (object keys; array elements share their field's
    /// path) as [`mask_field`](Self::mask_field) does, with escapes decoded first, so
    /// `"ada\u0040example.com"` is read as the email it is; a masked string is written
    /// back as a JSON string, escaped; a value that becomes NULL, and a number holding a
    /// detected value, become `null`. Keys holding a detected value are masked as text.
    /// On [`CellOutcome::Replaced`] the whole masked body was appended to `out`; on
    /// `Unchanged` nothing was (forward the original).
    ///
    /// Text that is not JSON is still masked, never passed unread: an unterminated string
    /// is read to the body's end, and any other run of bytes (a bare word, a number) is
    /// read as a number is. Values nested deeper than [`MAX_DEPTH`] are replaced by
    /// `null` whole. Cost: linear in the body; each string is bounded by
    /// `masking.max_cell_bytes` as a cell is.
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{CellOutcome, Policy};
    /// let policy = Policy::from_json("{}")?.compile()?;
    /// let mut masker = policy.masker();
    /// let mut out = Vec::new();
    /// let body = br#"{"user": {"email": "ada\u0040example.com", "id": 7}}"#;
    /// assert_eq!(masker.mask_json(body, &mut out), CellOutcome::Replaced);
    /// assert_eq!(out, br#"{"user": {"email": "[REDACTED:EMAIL_ADDRESS]", "id": 7}}"#);
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn mask_json(&mut self, body: &[u8], out: &mut Vec<u8>) -> CellOutcome {
        let base = out.len();
        let mut json = JsonWalk {
            body,
            emitted: 0,
            changed: false,
            path: FieldPath::new(),
            stack: Vec::new(),
            decoded: Vec::new(),
            masked: Vec::new(),
            quoted: Vec::new(),
        };
        let mut i = 0;
        while let Some(&b) = body.get(i) {
            i = match b {
                b' ' | b'\t' | b'\n' | b'\r' | b':' => {
                    if b == b':'
                        && let Some(frame) = json.stack.last_mut()
                    {
                        frame.want_key = false;
                    }
                    i + 1
                }
                b'{' | b'[' if json.stack.len() >= MAX_DEPTH => {
                    let end = container_end(body, i);
                    json.replace(out, i, end, b"null");
                    end
                }
                b'{' | b'[' => {
                    json.stack.push(Frame {
                        object: b == b'{',
                        keyed: false,
                        want_key: b == b'{',
                    });
                    i + 1
                }
                b'}' | b']' => {
                    if json.stack.pop().is_some_and(|f| f.keyed) {
                        json.path.pop();
                    }
                    i + 1
                }
                b',' => {
                    if let Some(frame) = json.stack.last_mut()
                        && frame.object
                    {
                        if frame.keyed {
                            json.path.pop();
                            frame.keyed = false;
                        }
                        frame.want_key = true;
                    }
                    i + 1
                }
                b'"' => self.json_string(&mut json, i, out),
                _ => {
                    let end = scalar_end(body, i);
                    let token = &body[i..end];
                    if !matches!(token, b"true" | b"false" | b"null") {
                        json.masked.clear();
                        let outcome = self.mask_field(
                            &json.path,
                            token,
                            ValueKind::TypedText,
                            &mut json.masked,
                        );
                        if outcome != CellOutcome::Unchanged {
                            json.replace(out, i, end, b"null");
                        }
                    }
                    end
                }
            };
        }
        if !json.changed {
            out.truncate(base);
            return CellOutcome::Unchanged;
        }
        out.extend_from_slice(&body[json.emitted..]);
        CellOutcome::Replaced
    }

    /// One JSON string at `start` (its opening quote): a key, pushed on the path and
    /// masked as text, or a value, masked at its path. Returns where it ends.
    fn json_string(&mut self, json: &mut JsonWalk<'_>, start: usize, out: &mut Vec<u8>) -> usize {
        let body = json.body;
        let (end, closed) = string_end(body, start + 1);
        let raw = &body[start + 1..if closed { end - 1 } else { end }];
        let escaped = memchr::memchr(b'\\', raw).is_some();
        if escaped {
            decode_json_string(raw, &mut json.decoded);
        }
        let text: &[u8] = if escaped { &json.decoded } else { raw };
        json.masked.clear();
        let key = json.stack.last().is_some_and(|f| f.object && f.want_key);
        let outcome = if key {
            if let Some(frame) = json.stack.last_mut() {
                if frame.keyed {
                    json.path.pop();
                }
                frame.keyed = true;
                frame.want_key = false;
            }
            json.path.push(text);
            if self.mask_free_text(text, &mut json.masked) {
                CellOutcome::Replaced
            } else {
                CellOutcome::Unchanged
            }
        } else {
            self.mask_field(&json.path, text, ValueKind::Text, &mut json.masked)
        };
        match outcome {
            CellOutcome::Unchanged => {}
            CellOutcome::Replaced => {
                let mut quoted = std::mem::take(&mut json.quoted);
                quoted.clear();
                quoted.push(b'"');
                escape_json(&json.masked, &mut quoted);
                if closed {
                    quoted.push(b'"');
                }
                json.replace(out, start, end, &quoted);
                json.quoted = quoted;
            }
            CellOutcome::Null => json.replace(out, start, end, b"null"),
        }
        end
    }

    /// Masks the next `chunk` of a text stream (a text body, a terminal's output), writing
    /// what can be released to `out`: whole lines, masked as [`mask_text`](Self::mask_text)
    /// masks text. The line being received is held back until its end arrives, so a value
    /// split across chunks is masked whole; `last` releases everything (the stream ended).
    /// A private key block (`-----BEGIN ...` without its `-----END` yet) is held back
    /// whole, so its body lines are masked with their header.
    ///
    /// A line (or held-back block) longer than `masking.max_cell_bytes` is not held back
    /// without bound: it is masked in pieces, each scanned together with the last
    /// [`STREAM_OVERLAP`] bytes of the one before, by the cheaper rule for oversized
    /// cells: a piece in or next to which a value is found becomes that entity's label,
    /// otherwise it passes unchanged. So held-back memory stays under `max_cell_bytes`
    /// plus a chunk, and a value straddling two pieces is found as long as it is shorter
    /// than the overlap.
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{Policy, TextStream};
    /// let policy = Policy::from_json("{}")?.compile()?;
    /// let mut masker = policy.masker();
    /// let mut stream = TextStream::new();
    /// let mut out = Vec::new();
    /// masker.mask_stream(&mut stream, b"mail: ada@exam", false, &mut out);
    /// assert!(out.is_empty()); // the line is not complete yet
    /// masker.mask_stream(&mut stream, b"ple.com\nnext", false, &mut out);
    /// assert_eq!(out, b"mail: [REDACTED:EMAIL_ADDRESS]\n");
    /// masker.mask_stream(&mut stream, b"", true, &mut out);
    /// assert_eq!(out, b"mail: [REDACTED:EMAIL_ADDRESS]\nnext");
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn mask_stream(
        &mut self,
        stream: &mut TextStream,
        chunk: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) {
        // Only the new bytes are searched for line ends and markers: what was held back
        // was searched already, so a stream costs time linear in its length.
        let mut from = stream.pending.len();
        stream.pending.extend_from_slice(chunk);
        if stream.long_line {
            // A long line ends at its line end; a private key block after its END marker.
            let stop = if stream.in_key {
                key_end(&stream.pending, from)
            } else {
                memchr::memchr(b'\n', &stream.pending[from..]).map(|n| from + n + 1)
            };
            let end = match stop {
                Some(end) => end,
                None if last || stream.pending.len() >= LONG_LINE_PIECE => stream.pending.len(),
                None => return,
            };
            let piece: Vec<u8> = stream.pending.drain(..end).collect();
            self.mask_long_piece(stream, &piece, out);
            if stop.is_none() {
                return;
            }
            stream.long_line = false;
            stream.in_key = false;
            stream.overlap.clear();
            from = 0;
        }
        let cut = release_point(stream, from, last);
        if cut > 0 {
            let released: Vec<u8> = stream.pending.drain(..cut).collect();
            if !self.mask_free_text(&released, out) {
                out.extend_from_slice(&released);
            }
        }
        if stream.pending.len() > self.max_cell_bytes {
            let piece = std::mem::take(&mut stream.pending);
            stream.long_line = true;
            stream.in_key = std::mem::take(&mut stream.holding_key) || open_key(&piece);
            stream.overlap.clear();
            self.mask_long_piece(stream, &piece, out);
        }
    }

    /// One piece of a long line, scanned with the overlap before it: the first value's
    /// label if any is found, else the piece as it is.
    fn mask_long_piece(&mut self, stream: &mut TextStream, piece: &[u8], out: &mut Vec<u8>) {
        let scanned: Cow<'_, [u8]> = if stream.overlap.is_empty() {
            Cow::Borrowed(piece)
        } else {
            let mut joined = std::mem::take(&mut stream.overlap);
            joined.extend_from_slice(piece);
            Cow::Owned(joined)
        };
        // Inside a private key block every piece is the key's, header seen or not.
        let key = self.policy().inner.matcher.id(EntityType::PrivateKey);
        let found = match key.filter(|_| stream.in_key) {
            Some(key) => Some(key),
            None => self
                .find_first(&scanned, ColumnGates::default())
                .map(|first| first.entity),
        };
        match found {
            Some(entity) => {
                self.count(entity);
                out.extend_from_slice(&self.policy().inner.entities[entity.index()].label);
                // The line end the piece ends with stays: the lines after keep their place.
                if piece.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
            None => out.extend_from_slice(piece),
        }
        let tail = scanned.len().saturating_sub(STREAM_OVERLAP);
        stream.overlap.clear();
        stream.overlap.extend_from_slice(&scanned[tail..]);
    }
}

/// Where a stream's pending bytes can be cut: after the last line end, but before a
/// private key block whose end has not arrived (then held back, and only new bytes,
/// from `from`, are searched for its end); everything when the stream ended.
fn release_point(stream: &mut TextStream, from: usize, last: bool) -> usize {
    let pending = &stream.pending;
    if last {
        stream.holding_key = false;
        return pending.len();
    }
    let search_from = if stream.holding_key {
        match key_end(pending, from) {
            Some(end) => {
                stream.holding_key = false;
                end
            }
            None => return 0,
        }
    } else {
        from
    };
    let cut = memchr::memrchr(b'\n', &pending[search_from..]).map_or(0, |n| search_from + n + 1);
    match memmem::rfind(&pending[..cut], BEGIN) {
        Some(begin) if open_key(&pending[begin..]) => {
            stream.holding_key = true;
            begin
        }
        _ => cut,
    }
}

const BEGIN: &[u8] = b"-----BEGIN";
const END: &[u8] = b"-----END";

/// Just past the first END marker in `pending` that ends in `pending[from..]`.
fn key_end(pending: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(END.len() - 1);
    memmem::find(&pending[start..], END).map(|e| start + e + END.len())
}

/// Whether `text` opens a key block (`-----BEGIN`) that it does not close (`-----END`).
fn open_key(text: &[u8]) -> bool {
    memmem::rfind(text, BEGIN).is_some_and(|begin| memmem::find(&text[begin..], END).is_none())
}

/// An object or array being walked.
struct Frame {
    object: bool,
    /// The object's current key is on the path.
    keyed: bool,
    /// The next string is a key.
    want_key: bool,
}

/// The state of one [`CellMasker::mask_json`] call.
struct JsonWalk<'b> {
    body: &'b [u8],
    /// `body[..emitted]` has been accounted for in the output (when `changed`).
    emitted: usize,
    changed: bool,
    path: FieldPath,
    stack: Vec<Frame>,
    decoded: Vec<u8>,
    masked: Vec<u8>,
    quoted: Vec<u8>,
}

impl JsonWalk<'_> {
    /// Writes `with` in place of `body[start..end]`, after the body's bytes since the last
    /// replacement.
    fn replace(&mut self, out: &mut Vec<u8>, start: usize, end: usize, with: &[u8]) {
        out.extend_from_slice(&self.body[self.emitted..start]);
        out.extend_from_slice(with);
        self.emitted = end;
        self.changed = true;
    }
}

/// Where the string whose contents start at `from` ends: past its closing quote (true),
/// or the body's end when it has none (false).
fn string_end(body: &[u8], from: usize) -> (usize, bool) {
    let mut i = from;
    while let Some(n) = memchr::memchr2(b'"', b'\\', &body[i..]) {
        let at = i + n;
        if body[at] == b'"' {
            return (at + 1, true);
        }
        i = at + 2;
        if i >= body.len() {
            break;
        }
    }
    (body.len(), false)
}

/// Where a bare token (a number, `true`, anything not JSON) starting at `from` ends.
fn scalar_end(body: &[u8], from: usize) -> usize {
    body[from..]
        .iter()
        .position(|b| {
            matches!(
                b,
                b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'}' | b'[' | b']' | b':' | b',' | b'"'
            )
        })
        .map_or(body.len(), |n| from + n.max(1))
}

/// Where the object or array opening at `from` closes (past its bracket), counting
/// brackets outside strings; the body's end if it never does.
fn container_end(body: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut i = from;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => {
                i = string_end(body, i + 1).0;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    body.len()
}

/// A JSON string's contents with its escapes decoded, as a JSON parser reads them:
/// `\u0040` is `@`, surrogate pairs join, a lone surrogate is U+FFFD. An escape JSON does
/// not define gives the escaped character itself.
fn decode_json_string(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        let Some(n) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            return;
        };
        out.extend_from_slice(&raw[i..i + n]);
        i += n + 1;
        let Some(&e) = raw.get(i) else {
            return;
        };
        i += 1;
        let c = match e {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => match hex4(raw, i) {
                Some(hi) => {
                    i += 4;
                    match (hi, raw.get(i..i + 2)) {
                        (0xD800..=0xDBFF, Some(b"\\u")) => match hex4(raw, i + 2) {
                            Some(lo @ 0xDC00..=0xDFFF) => {
                                i += 6;
                                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER)
                            }
                            _ => char::REPLACEMENT_CHARACTER,
                        },
                        _ => char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER),
                    }
                }
                None => 'u',
            },
            other => {
                out.push(other);
                continue;
            }
        };
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

/// Four hex digits at `at`, if there are.
fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// Appends `text` escaped as a JSON string's contents.
fn escape_json(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
}
