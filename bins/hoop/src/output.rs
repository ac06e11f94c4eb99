//! How the CLI prints: aligned tables for people, `-o json` and `-o yaml`
//! for scripts, times in local time.

use std::sync::OnceLock;

use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};

/// `-o`: how a command prints what the API returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// An aligned table.
    Table,
    /// The API's JSON.
    Json,
    /// The API's JSON as YAML.
    Yaml,
}

/// A table: a header row of column names and rows of cells, printed with
/// each column as wide as its widest cell, three spaces apart.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, a final newline included.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(index) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (index, cell) in row.iter().enumerate() {
                if index > 0 {
                    line.push_str("   ");
                }
                line.push_str(cell);
                let pad = widths
                    .get(index)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Prints `value` as JSON (pretty) or YAML; `table` for the table format.
pub(crate) fn print(format: Format, value: &Value, table: impl FnOnce() -> Table) {
    match format {
        Format::Table => print!("{}", table().render()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        ),
        Format::Yaml => print!("{}", yaml(value)),
    }
}

/// A string field, or `-` when absent, null or empty.
pub(crate) fn field(value: &Value, name: &str) -> String {
    match value.get(name) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Null | Value::String(_)) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// `value` as a YAML document in block style. Strings are written plain
/// only when YAML cannot read them as anything else, otherwise in double
/// quotes with JSON's escapes (which YAML's double-quoted style shares).
pub(crate) fn yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Array(items) if !items.is_empty() => yaml_items(&mut out, items, 0),
        Value::Object(map) if !map.is_empty() => yaml_map(&mut out, map, 0),
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

fn yaml_items(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.extend(std::iter::repeat_n(' ', indent));
        out.push('-');
        yaml_nested(out, item, indent + 2, true);
    }
}

fn yaml_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (key, item) in map {
        out.extend(std::iter::repeat_n(' ', indent));
        out.push_str(&yaml_string(key));
        out.push(':');
        yaml_nested(out, item, indent + 2, false);
    }
}

/// What follows `-` or `key:`: a scalar on the same line, or a block below.
/// A map inside a list starts on the dash's line, as YAML writers do.
fn yaml_nested(out: &mut String, value: &Value, indent: usize, in_list: bool) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            yaml_items(out, items, if in_list { indent } else { indent - 2 });
        }
        Value::Object(map) if !map.is_empty() => {
            if in_list {
                let mut block = String::new();
                yaml_map(&mut block, map, indent);
                out.push(' ');
                out.push_str(&block[indent..]);
            } else {
                out.push('\n');
                yaml_map(out, map, indent);
            }
        }
        scalar => {
            out.push(' ');
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::String(s) => yaml_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
        other => other.to_string(),
    }
}

fn yaml_string(s: &str) -> String {
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let plain = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'@'))
        && !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s));
    if plain {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

/// The local time zone's offset, read once at start while the process
/// has one thread (the platform's call is only safe then); UTC when it
/// cannot be read.
static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the local offset; call first thing in `main`.
pub(crate) fn init_local_offset() {
    let _ = LOCAL_OFFSET.set(UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC));
}

/// A time in milliseconds since the epoch as local `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn local_time(ms: i64) -> String {
    let offset = LOCAL_OFFSET.get().copied().unwrap_or(UtcOffset::UTC);
    let Ok(utc) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return "-".into();
    };
    let t = utc.to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A duration in milliseconds, short: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub(crate) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// `--since`: a duration back from `now_ms` (`90s`, `30m`, `2h`, `7d`), an
/// RFC 3339 time, or milliseconds since the epoch; as milliseconds.
///
/// # Errors
///
/// When it is none of these.
pub(crate) fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let unit = |suffix: char, ms: i64| {
        text.strip_suffix(suffix)
            .and_then(|n| n.parse::<i64>().ok())
            .map(|n| now_ms.saturating_sub(n.saturating_mul(ms)))
    };
    if let Some(ms) = unit('s', 1_000)
        .or_else(|| unit('m', 60_000))
        .or_else(|| unit('h', 3_600_000))
        .or_else(|| unit('d', 86_400_000))
    {
        return Ok(ms);
    }
    let parsed = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            anyhow::anyhow!(
                "--since {text:?} is not a duration (30m, 2h, 7d), an RFC 3339 time \
                 (2026-12-01T09:00:00Z) or milliseconds since the epoch"
            )
        })?;
    Ok(i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_every_column() {
        let mut table = Table::new(&["NAME", "STATUS"]);
        table.row(vec!["pg".into(), "online".into()]);
        table.row(vec!["a-longer-name".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "NAME            STATUS\npg              online\na-longer-name   -\n"
        );
    }

    #[test]
    fn yaml_is_block_style_and_quotes_what_would_change_meaning() {
        let value = json!([
            {"name": "pg", "port": 5432, "on": true, "tags": ["a=b", "yes"], "none": null,
             "empty": [], "nested": {"x": "1", "y": "two words"}},
            "plain",
        ]);
        // Keys in serde_json's order (sorted); `y` is a YAML 1.1 boolean.
        assert_eq!(
            yaml(&value),
            "- empty: []\n  name: pg\n  nested:\n    x: \"1\"\n    \"y\": \"two words\"\n  \
             none: null\n  \"on\": true\n  port: 5432\n  tags:\n  - \"a=b\"\n  - \"yes\"\n- plain\n"
        );
        assert_eq!(yaml(&json!([])), "[]\n");
    }

    #[test]
    fn since_takes_durations_rfc3339_and_milliseconds() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("90s", now).unwrap(), now - 90_000);
        assert_eq!(parse_since("30m", now).unwrap(), now - 1_800_000);
        assert_eq!(parse_since("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_since("7d", now).unwrap(), now - 604_800_000);
        assert_eq!(
            parse_since("1700000000000", now).unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_since("2023-11-14T23:13:20+01:00", now).unwrap(),
            1_700_000_000_000
        );
        assert!(parse_since("yesterday", now).is_err());
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_340), "12.3s");
        assert_eq!(duration(245_000), "4m05s");
        assert_eq!(duration(7_380_000), "2h03m");
    }
}
