//! Command-line pieces shared by `hoop-gateway` and `hoop up`.

use std::path::PathBuf;

use crate::{Gateway, GatewayConfig};

/// The gateway's flags; each has an environment variable too. Its `Debug`
/// leaves out the database URL, which may carry a password.
#[derive(Clone, clap::Args)]
pub struct GatewayFlags {
    /// Where the REST API listens.
    #[arg(long, env = "HOOP_API_LISTEN", default_value = "127.0.0.1:8009")]
    pub api_listen: String,
    /// Where agents dial in.
    #[arg(long, env = "HOOP_AGENT_LISTEN", default_value = "127.0.0.1:8010")]
    pub agent_listen: String,
    /// The agent address written into agent keys, if not the listener's.
    #[arg(long, env = "HOOP_AGENT_ADVERTISE")]
    pub agent_advertise: Option<String>,
    /// Data directory: SQLite database and secret key.
    #[arg(long, env = "HOOP_DATA_DIR", default_value = "./hoop-data")]
    pub data_dir: PathBuf,
    /// Keep state in PostgreSQL (postgres://user@host:port/db) instead of
    /// SQLite. Gateways sharing one database need the same HOOP_SECRET_KEY.
    #[arg(long, env = "HOOP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// TLS certificate chain (PEM) for the REST API (then HTTPS only), the
    /// agent listener and the PostgreSQL and MySQL client listeners (which
    /// then refuse plain text from clients not on loopback).
    #[arg(long, env = "HOOP_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, env = "HOOP_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Where PostgreSQL clients connect: user name = connection name,
    /// password = access token. `off` serves none.
    #[arg(long, env = "HOOP_POSTGRES_LISTEN", default_value = "127.0.0.1:15432")]
    pub postgres_listen: String,
    /// Where MySQL clients connect: user name = connection name, password
    /// = access token. `off` serves none.
    #[arg(long, env = "HOOP_MYSQL_LISTEN", default_value = "127.0.0.1:13306")]
    pub mysql_listen: String,
    /// Seconds a client of the PostgreSQL or MySQL listener has to log in
    /// (TLS handshake included) before it is let go.
    #[arg(long, env = "HOOP_LOGIN_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub login_timeout: u64,
    /// Seconds an API client has to send a whole request, and an idle API
    /// connection waits for its next one, before it is let go.
    #[arg(long, env = "HOOP_API_IDLE_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub api_idle_timeout: u64,
    /// Connections each client listener (API, PostgreSQL, MySQL) serves at
    /// once; more are refused in the client's protocol.
    #[arg(long, env = "HOOP_MAX_CONNECTIONS", default_value_t = crate::gateway::DEFAULT_MAX_CONNECTIONS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// How long a review (an access request) waits for its reviewers
    /// before it expires: 90s, 30m, 1h, 2d.
    #[arg(long, env = "HOOP_REVIEW_TIMEOUT", default_value = "1h", value_parser = parse_duration)]
    pub review_timeout: std::time::Duration,
    /// The base URL of Slack's Web API, for the slack plugin.
    #[arg(long, env = "SLACK_API_URL", default_value = crate::slack::DEFAULT_API_URL)]
    pub slack_api_url: String,
}

/// A duration as people write it: a whole number and `s`, `m`, `h` or `d`.
///
/// # Errors
///
/// A message for clap when it is not one.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (s, m, h or d), as in 30m"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number then s, m, h or d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: out of range"))
}

impl std::fmt::Debug for GatewayFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayFlags")
            .field("api_listen", &self.api_listen)
            .field("agent_listen", &self.agent_listen)
            .field("data_dir", &self.data_dir)
            .field("postgres", &self.database_url.is_some())
            .finish_non_exhaustive()
    }
}

impl GatewayFlags {
    /// The gateway configuration these flags describe, with the secret key
    /// and admin token from `HOOP_SECRET_KEY` and `HOOP_ADMIN_TOKEN`.
    pub fn into_config(self) -> GatewayConfig {
        GatewayConfig {
            api_listen: self.api_listen,
            agent_listen: self.agent_listen,
            agent_advertise: self.agent_advertise,
            data_dir: self.data_dir,
            database_url: self.database_url,
            secret_key: std::env::var(crate::crypto::SECRET_KEY_ENV).ok(),
            admin_token: std::env::var("HOOP_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            postgres_listen: Some(self.postgres_listen).filter(|a| a != "off"),
            mysql_listen: Some(self.mysql_listen).filter(|a| a != "off"),
            login_timeout: std::time::Duration::from_secs(self.login_timeout),
            api_idle_timeout: std::time::Duration::from_secs(self.api_idle_timeout),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            review_timeout: self.review_timeout,
            slack_api_url: self.slack_api_url,
        }
    }
}

/// `hoop-gateway`'s command line.
#[derive(Debug, clap::Parser)]
#[command(name = "hoop-gateway", version, about = "The hoop control plane")]
pub struct GatewayArgs {
    /// Gateway settings.
    #[command(flatten)]
    pub flags: GatewayFlags,
}

impl GatewayArgs {
    /// See [`GatewayFlags::into_config`].
    pub fn into_config(self) -> GatewayConfig {
        self.flags.into_config()
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// Prints where the gateway listens and, on first start, the admin token.
pub fn print_banner(gateway: &Gateway) {
    println!("hoop gateway");
    println!("  API:          {}", gateway.api_url());
    println!("  agent link:   {}", gateway.agent_addr);
    let (tls, sslmode, ssl) = if gateway.listener_tls {
        (" (TLS)", " sslmode=require", "--ssl")
    } else {
        ("", "", "--skip-ssl")
    };
    if let Some(addr) = gateway.postgres_addr {
        println!(
            "  postgres:     {addr}{tls}  (psql \"host={} port={} user=CONNECTION{sslmode}\", password: your token)",
            addr.ip(),
            addr.port()
        );
    }
    if let Some(addr) = gateway.mysql_addr {
        println!(
            "  mysql:        {addr}{tls}  (mariadb -h {} -P {} -u CONNECTION {ssl}, password: your token)",
            addr.ip(),
            addr.port()
        );
    }
    if let Some(token) = &gateway.first_admin_token {
        println!("  admin token:  {token}");
        println!("                (shown once; keep it, or set HOOP_ADMIN_TOKEN)");
        println!("                export HOOP_TOKEN={token}");
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
