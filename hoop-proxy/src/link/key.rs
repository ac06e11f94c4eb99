//! The agent key: a DSN naming the agent, its secret and the gateway.
//!
//! `hoop://NAME:SECRET@HOST:PORT?mode=standard` for a plain link,
//! `hoops://...` when the gateway's agent listener has a TLS certificate.
//! The secret is 32 random bytes in URL-safe base64; the gateway keeps only
//! its hash.

use std::fmt;
use std::str::FromStr;

/// A parsed agent key.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentKey {
    /// The agent's name.
    pub name: String,
    /// The agent's secret.
    pub secret: String,
    /// The gateway's agent listener, `HOST:PORT`.
    pub address: String,
    /// Whether the link uses TLS.
    pub tls: bool,
    /// The agent's mode (`standard` or `embedded`).
    pub mode: String,
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "hoops" } else { "hoop" };
        write!(
            f,
            "{scheme}://{}:{}@{}?mode={}",
            self.name, self.secret, self.address, self.mode
        )
    }
}

/// A key that does not parse; never quotes the key (it holds a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key does not have the expected shape.
    #[error("invalid agent key: {0}")]
    Malformed(&'static str),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl AgentKey {
    /// Whether `name` may name an agent (it travels inside the key).
    pub fn is_valid_name(name: &str) -> bool {
        valid_name(name)
    }
}

impl FromStr for AgentKey {
    type Err = KeyError;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let key = key.trim();
        let (tls, rest) = if let Some(rest) = key.strip_prefix("hoops://") {
            (true, rest)
        } else if let Some(rest) = key.strip_prefix("hoop://") {
            (false, rest)
        } else {
            return Err(KeyError::Malformed("must start with hoop:// or hoops://"));
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (credentials, address) = authority
            .rsplit_once('@')
            .ok_or(KeyError::Malformed("missing NAME:SECRET@"))?;
        let (name, secret) = credentials
            .split_once(':')
            .ok_or(KeyError::Malformed("missing the secret"))?;
        if !valid_name(name) {
            return Err(KeyError::Malformed("bad agent name"));
        }
        if secret.is_empty() {
            return Err(KeyError::Malformed("empty secret"));
        }
        match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return Err(KeyError::Malformed("gateway address must be HOST:PORT")),
        }
        let mode = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("mode="))
            .unwrap_or("standard")
            .to_owned();
        Ok(Self {
            name: name.to_owned(),
            secret: secret.to_owned(),
            address: address.to_owned(),
            tls,
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_same_key() {
        let text = "hoops://db-agent:c2VjcmV0@gw.internal:8010?mode=standard";
        let key: AgentKey = text.parse().unwrap();
        assert_eq!(key.name, "db-agent");
        assert_eq!(key.address, "gw.internal:8010");
        assert!(key.tls);
        assert_eq!(key.to_string(), text);
        assert!(!format!("{key:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn refuses_malformed_keys_without_quoting_them() {
        for bad in [
            "",
            "http://a:b@h:1",
            "hoop://a@h:1",
            "hoop://a:@h:1",
            "hoop://a:s3cr3t@h",
            "hoop://a:s3cr3t@h:99999",
            "hoop://a b:s3cr3t@h:1",
        ] {
            let err = bad.parse::<AgentKey>().unwrap_err();
            assert!(!err.to_string().contains("s3cr3t"), "{bad}");
        }
    }
}
