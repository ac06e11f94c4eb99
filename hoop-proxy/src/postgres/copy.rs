//! COPY TO STDOUT rows, field by field, for masking.
//!
//! PostgreSQL sends one CopyData message per row. In text format the fields
//! are separated by tabs, with `\N` for NULL and backslash escapes for tabs,
//! newlines and backslashes inside values; in CSV format by commas, with
//! quoted fields (`""` for a quote inside) and an unquoted empty field for
//! NULL. Custom delimiters and binary format are not parsed: the codec ends
//! the session rather than forward such rows unexamined.
//!
//! A field's cell is the value as the detectors should see it (a CSV field
//! unquoted; a text field as sent, since the escapes never touch the
//! characters entities are made of). A masked value is written back quoted
//! (CSV) or with any tab or line break in it turned into a space (text), so
//! the row keeps its shape.

use bytes::Bytes;

/// The text format's NULL.
const TEXT_NULL: &[u8] = b"\\N";

/// One field of a row: where it sits in the row, and its cell.
#[derive(Debug)]
pub(super) struct Field {
    start: usize,
    end: usize,
    pub(super) cell: Option<Bytes>,
}

/// A row split into its fields, and the line ending after them.
#[derive(Debug)]
pub(super) struct CopyRow {
    pub(super) fields: Vec<Field>,
    body_end: usize,
}

/// Splits a CopyData row. `None` when it is not well-formed CSV (an
/// unterminated quote).
pub(super) fn split(row: &Bytes, csv: bool) -> Option<CopyRow> {
    let body_end = match row.as_ref() {
        [.., b'\r', b'\n'] => row.len() - 2,
        [.., b'\n'] => row.len() - 1,
        _ => row.len(),
    };
    let body = &row[..body_end];
    let mut fields = Vec::new();
    let mut start = 0;
    if csv {
        loop {
            let (end, cell) = if body.get(start) == Some(&b'"') {
                let mut value = Vec::new();
                let mut i = start + 1;
                loop {
                    match (body.get(i), body.get(i + 1)) {
                        (Some(b'"'), Some(b'"')) => {
                            value.push(b'"');
                            i += 2;
                        }
                        (Some(b'"'), _) => break,
                        (Some(b), _) => {
                            value.push(*b);
                            i += 1;
                        }
                        (None, _) => return None,
                    }
                }
                (i + 1, Some(Bytes::from(value)))
            } else {
                let end = body[start..]
                    .iter()
                    .position(|b| *b == b',')
                    .map_or(body.len(), |p| start + p);
                let cell = (end > start).then(|| row.slice(start..end));
                (end, cell)
            };
            fields.push(Field { start, end, cell });
            match body.get(end) {
                Some(b',') => start = end + 1,
                None => break,
                Some(_) => return None,
            }
        }
    } else {
        for part in body.split(|b| *b == b'\t') {
            let end = start + part.len();
            let cell = (part != TEXT_NULL).then(|| row.slice(start..end));
            fields.push(Field { start, end, cell });
            start = end + 1;
        }
    }
    Some(CopyRow { fields, body_end })
}

/// Writes `row` back with `cells` (one per field, after the hook) in place
/// of its fields: unchanged cells from their original bytes.
pub(super) fn join(
    row: &Bytes,
    split: &CopyRow,
    cells: &[Option<Bytes>],
    csv: bool,
    out: &mut Vec<u8>,
) {
    let separator = if csv { b',' } else { b'\t' };
    for (i, (field, cell)) in split.fields.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(separator);
        }
        match cell {
            Some(value) if Some(value) == field.cell.as_ref() => {
                out.extend_from_slice(&row[field.start..field.end]);
            }
            Some(value) if csv => {
                out.push(b'"');
                for b in value {
                    if *b == b'"' {
                        out.push(b'"');
                    }
                    out.push(*b);
                }
                out.push(b'"');
            }
            Some(value) => out.extend(value.iter().map(|b| match b {
                b'\t' | b'\n' | b'\r' => b' ',
                other => *other,
            })),
            None if csv => {}
            None => out.extend_from_slice(TEXT_NULL),
        }
    }
    out.extend_from_slice(&row[split.body_end..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(row: &CopyRow) -> Vec<Option<&[u8]>> {
        row.fields.iter().map(|f| f.cell.as_deref()).collect()
    }

    #[test]
    fn splits_text_and_csv_rows_and_joins_them_back_unchanged() {
        let text = Bytes::from_static(b"1\tada@example.com\t\\N\ta\\tb\n");
        let split_text = split(&text, false).unwrap();
        assert_eq!(
            cells(&split_text),
            [
                Some(&b"1"[..]),
                Some(b"ada@example.com"),
                None,
                Some(b"a\\tb")
            ]
        );
        let mut out = Vec::new();
        let same: Vec<_> = split_text.fields.iter().map(|f| f.cell.clone()).collect();
        join(&text, &split_text, &same, false, &mut out);
        assert_eq!(out, text);

        let csv = Bytes::from_static(b"1,\"say \"\"hi\"\", ada@example.com\",,x\r\n");
        let split_csv = split(&csv, true).unwrap();
        assert_eq!(
            cells(&split_csv),
            [
                Some(&b"1"[..]),
                Some(b"say \"hi\", ada@example.com"),
                None,
                Some(b"x")
            ]
        );
        let mut masked: Vec<_> = split_csv.fields.iter().map(|f| f.cell.clone()).collect();
        masked[1] = Some(Bytes::from_static(b"say \"hi\", [REDACTED]"));
        let mut out = Vec::new();
        join(&csv, &split_csv, &masked, true, &mut out);
        assert_eq!(out, b"1,\"say \"\"hi\"\", [REDACTED]\",,x\r\n");
        assert!(split(&Bytes::from_static(b"\"open"), true).is_none());
    }
}
