//! Judging input that is no SQL statement: commands typed in a terminal or sent as text,
//! and HTTP request lines. The word and pattern rules judge them, in every reading the
//! receiving side could take; statement-aware rules read SQL and pass them.

use std::borrow::Cow;

use super::{Check, Verdict};
use crate::compiled::CompiledPolicy;

impl CompiledPolicy {
    /// Judges a command (a line typed in a terminal, a command sent as text) by the
    /// policy's word and pattern input rules: the command as sent, and as a shell reads it
    /// with its quotes and backslashes removed (`r''m -rf`, `"r"m`, `r\m` are `rm` to a
    /// shell). The first rule matching any reading denies it. Statement-aware rules
    /// (`deny_statements`, `deny_without_where`, ...) judge SQL only and pass commands.
    ///
    /// A word rule is a guard against mistakes, not a sandbox: a shell can build a word
    /// at run time (`$(printf ...)`, variables) in ways no text reading sees.
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::Policy;
    /// let policy = Policy::from_json(
    ///     r#"{"guardrails": {"input": [{"type": "deny_words_list", "words": ["shutdown"]}]}}"#,
    /// )?.compile()?;
    /// assert!(!policy.check_command("sudo shutdown -h now").is_allowed());
    /// assert!(!policy.check_command("sudo shut'do'wn -h now").is_allowed());
    /// assert!(policy.check_command("uptime").is_allowed());
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn check_command(&self, command: &str) -> Verdict {
        let unquoted = shell_unquoted(command.as_bytes());
        self.judge_readings(&[command.as_bytes(), &unquoted])
    }

    /// Judges an HTTP request line, `method` and `target` (path and query as sent), by the
    /// word and pattern input rules: as sent (`GET /admin/users?id=1`), percent-decoded
    /// once (`+` as a space, as in a query) and twice (a server or framework that decodes
    /// again reads `%2561` as `a`). The first rule matching any reading denies it.
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::Policy;
    /// let policy = Policy::from_json(
    ///     r#"{"guardrails": {"input": [{"type": "pattern_match", "pattern_regex": "^DELETE /admin"}]}}"#,
    /// )?.compile()?;
    /// assert!(!policy.check_request("DELETE", "/%61dmin/users/7").is_allowed());
    /// assert!(policy.check_request("GET", "/admin/users/7").is_allowed());
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn check_request(&self, method: &str, target: &str) -> Verdict {
        let line = format!("{method} {target}");
        let once = percent_decoded(line.as_bytes());
        let twice = percent_decoded(&once);
        self.judge_readings(&[line.as_bytes(), &once, &twice])
    }

    /// The first word or pattern rule matching any of `readings`.
    fn judge_readings(&self, readings: &[&[u8]]) -> Verdict {
        for (i, rule) in self.inner.guardrails.input.iter().enumerate() {
            let denied = match &rule.check {
                Check::Words(w) => readings.iter().any(|r| w.matches(r)),
                Check::Pattern(re) => readings
                    .iter()
                    .any(|r| re.is_match(&String::from_utf8_lossy(r))),
                _ => false,
            };
            if denied {
                return rule.deny(i);
            }
        }
        Verdict::Allow
    }
}

/// `text` without the quotes and backslashes a shell removes.
fn shell_unquoted(text: &[u8]) -> Cow<'_, [u8]> {
    let quoting = |b: &u8| matches!(b, b'\'' | b'"' | b'\\');
    if !text.iter().any(quoting) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.iter().copied().filter(|b| !quoting(b)).collect())
}

/// `text` with `%XX` escapes decoded and `+` read as a space.
fn percent_decoded(text: &[u8]) -> Cow<'_, [u8]> {
    if !text.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match (
            b,
            text.get(i + 1).copied().and_then(hex),
            text.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}
