//! The connection model every protocol shares.
//!
//! A *connection* (shown to people as a resource role) is a named, typed
//! configuration that exposes one internal service through an agent. Its
//! credentials are environment variables (`HOST`, `PORT`, `USER`, `PASS`, `DB`,
//! `SSLMODE`) that the agent resolves when a session opens; people never see them.
//!
//! Everything here reports a bad or missing credential by its *name*, never by
//! its value, so errors can be logged and shown to the person who asked.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What kind of service a connection exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionType {
    /// A database whose wire protocol the agent parses.
    Database,
    /// An HTTP, TCP or SSH service.
    Application,
    /// A shell command run when a session opens.
    Custom,
}

impl ConnectionType {
    /// The name used in the API and configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Application => "application",
            Self::Custom => "custom",
        }
    }
}

impl FromStr for ConnectionType {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "database" => Ok(Self::Database),
            "application" => Ok(Self::Application),
            "custom" => Ok(Self::Custom),
            _ => Err(ConfigError::Invalid {
                name: "type",
                reason: "must be database, application or custom",
            }),
        }
    }
}

/// The protocol of a `database` or `application` connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subtype {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// MongoDB.
    Mongodb,
    /// SQL Server (TDS).
    Mssql,
    /// Oracle (TNS).
    Oracledb,
    /// HTTP(S) forwarded to an upstream.
    Httpproxy,
    /// Raw TCP.
    Tcp,
    /// SSH, terminated and re-originated.
    Ssh,
}

impl Subtype {
    /// The name used in the API and configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Mongodb => "mongodb",
            Self::Mssql => "mssql",
            Self::Oracledb => "oracledb",
            Self::Httpproxy => "httpproxy",
            Self::Tcp => "tcp",
            Self::Ssh => "ssh",
        }
    }

    /// The connection type this subtype belongs to.
    pub fn connection_type(self) -> ConnectionType {
        match self {
            Self::Postgres | Self::Mysql | Self::Mongodb | Self::Mssql | Self::Oracledb => {
                ConnectionType::Database
            }
            Self::Httpproxy | Self::Tcp | Self::Ssh => ConnectionType::Application,
        }
    }

    /// Credential variables a connection of this subtype cannot work without.
    ///
    /// `PASS` is not among them for PostgreSQL and MySQL: an account with
    /// no password (PostgreSQL's trust authentication, MariaDB's stock
    /// `root`) is one those servers accept, and the drivers log in without
    /// one.
    pub fn required_credentials(self) -> &'static [&'static str] {
        match self {
            Self::Postgres | Self::Mysql => &["HOST", "PORT", "USER"],
            Self::Mssql | Self::Oracledb => &["HOST", "PORT", "USER", "PASS"],
            Self::Mongodb => &["HOST"],
            Self::Httpproxy => &["HOST"],
            Self::Tcp => &["HOST", "PORT"],
            Self::Ssh => &["HOST", "USER"],
        }
    }
}

impl FromStr for Subtype {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "postgres" => Self::Postgres,
            "mysql" => Self::Mysql,
            "mongodb" => Self::Mongodb,
            "mssql" => Self::Mssql,
            "oracledb" => Self::Oracledb,
            "httpproxy" => Self::Httpproxy,
            "tcp" => Self::Tcp,
            "ssh" => Self::Ssh,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "subtype",
                    reason: "unknown subtype",
                });
            }
        })
    }
}

/// Whether an access mode is allowed on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessMode {
    /// The mode may be used.
    #[default]
    Enabled,
    /// The mode is refused.
    Disabled,
}

impl AccessMode {
    /// The name used in the API (`enabled` or `disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }

    /// True when the mode may be used.
    pub fn is_enabled(self) -> bool {
        self == Self::Enabled
    }
}

impl FromStr for AccessMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enabled" => Ok(Self::Enabled),
            "disabled" => Ok(Self::Disabled),
            _ => Err(ConfigError::Invalid {
                name: "access_mode",
                reason: "must be enabled or disabled",
            }),
        }
    }
}

/// The three ways a person may use a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessModes {
    /// Run a command or query and get its output, non-interactively.
    pub exec: AccessMode,
    /// An interactive session through a native client.
    pub connect: AccessMode,
    /// Pre-defined, parameterised scripts.
    pub runbooks: AccessMode,
}

/// A credential value. Its `Debug` and `Display` never show the value, so a
/// secret cannot leak through a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it: authenticating
    /// to the real server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The credential variables of a connection, keyed by name without the
/// API's `envvar:` prefix (`HOST`, not `envvar:HOST`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    vars: BTreeMap<String, Secret>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Credentials {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable. A leading `envvar:` (the API's spelling) is removed.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let name = name.strip_prefix("envvar:").unwrap_or(name);
        self.vars.insert(name.to_owned(), Secret::new(value));
    }

    /// Reads the credential variables this crate knows from the process
    /// environment: how a standalone proxy such as `examples/pg_proxy.rs`
    /// learns its upstream.
    pub fn from_process_env() -> Self {
        let mut credentials = Self::new();
        for name in KNOWN_VARIABLES {
            if let Ok(value) = std::env::var(name) {
                credentials.set(name, value);
            }
        }
        credentials
    }

    /// A variable's value, if set.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.vars.get(name)
    }

    /// The names of the variables that are set (never their values).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        match self.vars.get(name) {
            Some(value) if !value.expose().is_empty() => Ok(value.expose()),
            _ => Err(ConfigError::Missing { name }),
        }
    }

    /// Resolves the credentials of a database connection into the target the
    /// agent dials.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] when `HOST` or `USER` is absent,
    /// [`ConfigError::Invalid`] when `PORT` or `SSLMODE` does not parse. Errors
    /// name the variable and never contain its value.
    pub fn database_target(&self, default_port: u16) -> Result<DatabaseTarget, ConfigError> {
        let host = self.required("HOST")?.to_owned();
        let port = match self.vars.get("PORT") {
            None => default_port,
            Some(port) => port.expose().parse().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                reason: "not a TCP port number",
            })?,
        };
        let user = self.required("USER")?.to_owned();
        let password = self.vars.get("PASS").cloned();
        let database = self
            .vars
            .get("DB")
            .map(|db| db.expose().to_owned())
            .filter(|db| !db.is_empty());
        let ssl_mode = match self.vars.get("SSLMODE") {
            None => SslMode::default(),
            Some(mode) => mode.expose().parse()?,
        };
        Ok(DatabaseTarget {
            host,
            port,
            user,
            password,
            database,
            ssl_mode,
        })
    }
}

/// Every credential variable name the product uses.
pub const KNOWN_VARIABLES: [&str; 6] = ["HOST", "PORT", "USER", "PASS", "DB", "SSLMODE"];

/// How the agent secures its connection to the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain otherwise; no certificate checks.
    #[default]
    Prefer,
    /// TLS or fail; no certificate checks.
    Require,
    /// TLS with the server's certificate checked against trusted roots and
    /// its name.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-full" => Ok(Self::VerifyFull),
            _ => Err(ConfigError::Invalid {
                name: "SSLMODE",
                reason: "must be disable, prefer, require or verify-full",
            }),
        }
    }
}

/// Where and as whom the agent connects to a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTarget {
    /// Host name or address (`HOST`).
    pub host: String,
    /// TCP port (`PORT`, or the protocol's default).
    pub port: u16,
    /// The real user (`USER`); never shown to the client.
    pub user: String,
    /// The real password (`PASS`), absent for trust authentication.
    pub password: Option<Secret>,
    /// The default database (`DB`), used when the client names none.
    pub database: Option<String>,
    /// TLS towards the server (`SSLMODE`).
    pub ssl_mode: SslMode,
}

/// A named, typed configuration that exposes one internal service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Unique name; people and native clients refer to the connection by it.
    pub name: String,
    /// What kind of service it is.
    pub kind: ConnectionType,
    /// The protocol; `None` for `custom` connections.
    pub subtype: Option<Subtype>,
    /// The agent that serves it; `None` inherits the agent of its resource.
    pub agent_id: Option<String>,
    /// Which access modes are allowed.
    pub access: AccessModes,
    /// Credential variables resolved by the agent.
    pub credentials: Credentials,
    /// For `custom` connections (and exec), the command to run.
    pub command: Vec<String>,
}

impl Connection {
    /// Checks that the type, subtype and credentials fit together.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the offending field or variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (self.kind, self.subtype) {
            (ConnectionType::Custom, None) => Ok(()),
            (ConnectionType::Custom, Some(_)) => Err(ConfigError::Invalid {
                name: "subtype",
                reason: "custom connections have no subtype",
            }),
            (_, None) => Err(ConfigError::Missing { name: "subtype" }),
            (kind, Some(subtype)) if subtype.connection_type() != kind => {
                Err(ConfigError::Invalid {
                    name: "subtype",
                    reason: "does not fit the connection type",
                })
            }
            (_, Some(subtype)) => {
                for name in subtype.required_credentials() {
                    self.credentials.required(name)?;
                }
                Ok(())
            }
        }
    }
}

/// A missing or invalid configuration value, named but never quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required value is absent or empty.
    #[error("missing required value {name}")]
    Missing {
        /// The field or variable name.
        name: &'static str,
    },
    /// A value is present but unusable.
    #[error("invalid value for {name}: {reason}")]
    Invalid {
        /// The field or variable name.
        name: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres_credentials() -> Credentials {
        let mut credentials = Credentials::new();
        credentials.set("envvar:HOST", "db.internal");
        credentials.set("envvar:PORT", "5432");
        credentials.set("envvar:USER", "app");
        credentials.set("envvar:PASS", "s3cret-value");
        credentials
    }

    #[test]
    fn resolves_database_target_with_defaults() {
        let target = postgres_credentials().database_target(5432).unwrap();
        assert_eq!(target.host, "db.internal");
        assert_eq!(target.port, 5432);
        assert_eq!(target.ssl_mode, SslMode::Prefer);
        assert_eq!(target.database, None);
    }

    #[test]
    fn invalid_port_is_named_not_quoted() {
        let mut credentials = postgres_credentials();
        credentials.set("PORT", "s3cret-port");
        let err = credentials.database_target(5432).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("PORT"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn debug_never_prints_secret_values() {
        let credentials = postgres_credentials();
        let target = credentials.database_target(5432).unwrap();
        let text = format!("{credentials:?} {target:?}");
        assert!(!text.contains("s3cret-value"), "{text}");
    }

    #[test]
    fn validate_reports_missing_credential_by_name() {
        let mut credentials = postgres_credentials();
        credentials.set("USER", "");
        let connection = Connection {
            name: "pg".into(),
            kind: ConnectionType::Database,
            subtype: Some(Subtype::Postgres),
            agent_id: None,
            access: AccessModes::default(),
            credentials,
            command: Vec::new(),
        };
        assert_eq!(
            connection.validate(),
            Err(ConfigError::Missing { name: "USER" })
        );
    }

    #[test]
    fn postgres_and_mysql_accept_an_account_without_a_password() {
        for subtype in [Subtype::Postgres, Subtype::Mysql] {
            for pass in [None, Some("")] {
                let mut credentials = Credentials::new();
                credentials.set("HOST", "db");
                credentials.set("PORT", "5432");
                credentials.set("USER", "root");
                if let Some(pass) = pass {
                    credentials.set("PASS", pass);
                }
                let connection = Connection {
                    name: "db".into(),
                    kind: ConnectionType::Database,
                    subtype: Some(subtype),
                    agent_id: None,
                    access: AccessModes::default(),
                    credentials,
                    command: Vec::new(),
                };
                assert_eq!(connection.validate(), Ok(()), "{subtype:?} {pass:?}");
            }
        }
    }

    #[test]
    fn validate_rejects_subtype_of_other_type() {
        let connection = Connection {
            name: "x".into(),
            kind: ConnectionType::Application,
            subtype: Some(Subtype::Postgres),
            agent_id: None,
            access: AccessModes::default(),
            credentials: postgres_credentials(),
            command: Vec::new(),
        };
        assert!(matches!(
            connection.validate(),
            Err(ConfigError::Invalid {
                name: "subtype",
                ..
            })
        ));
    }
}
