//! Where the CLI finds its gateway and token: `HOOP_API_URL` and
//! `HOOP_TOKEN`, else the file `hoop login` writes
//! (`$HOME/.hoop/config.toml`, mode 0600). An `https://` URL is verified
//! against the platform's trusted roots plus the CA file `HOOP_TLS_CA`
//! names (PEM), the variable `hoop-agent` reads for the same gateway
//! certificate, else the CA file that was in `HOOP_TLS_CA` at `hoop login`
//! (saved as an absolute path, not its contents).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use hoop_gateway::client::{ApiClient, ClientError, Endpoint};

/// The API of a `hoop up` with default flags.
pub(crate) const DEFAULT_API_URL: &str = "http://127.0.0.1:8009";

fn config_path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".hoop").join("config.toml"))
}

#[derive(Debug, Default)]
struct Saved {
    api_url: Option<String>,
    token: Option<String>,
    tls_ca: Option<String>,
}

fn read_saved() -> anyhow::Result<Saved> {
    let path = config_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let get = |key: &str| table.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(Saved {
        api_url: get("api_url"),
        token: get("token"),
        tls_ca: get("tls_ca"),
    })
}

/// The API URL and token from the environment or the saved login.
pub(crate) fn settings() -> anyhow::Result<(String, String)> {
    let saved = read_saved()?;
    let url = std::env::var("HOOP_API_URL")
        .ok()
        .or(saved.api_url)
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    let Some(token) = std::env::var("HOOP_TOKEN").ok().or(saved.token) else {
        bail!("no token: set HOOP_TOKEN or run `hoop login`");
    };
    Ok((url, token))
}

/// The CA file that `https://` API URLs may chain to, besides the
/// platform's roots: a gateway's certificate is often signed by a CA of
/// the organisation's own.
const TLS_CA_ENV: &str = "HOOP_TLS_CA";

/// The CA file from `HOOP_TLS_CA`, if set and not empty.
fn ca_from_env() -> Option<PathBuf> {
    std::env::var_os(TLS_CA_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The gateway's endpoint for `url`, trusting `HOOP_TLS_CA` when set, else
/// the CA saved by `hoop login`.
pub(crate) fn endpoint(url: &str) -> anyhow::Result<Endpoint> {
    let (ca, source) = match ca_from_env() {
        Some(ca) => (Some(ca), format!("{TLS_CA_ENV} is unusable")),
        None => (
            read_saved()?.tls_ca.map(PathBuf::from),
            "the CA file saved by `hoop login` is unusable (log in again)".to_owned(),
        ),
    };
    match Endpoint::new(url, ca.as_deref()) {
        Ok(endpoint) => Ok(endpoint),
        Err(error @ ClientError::CaFile { .. }) => Err(anyhow::Error::new(error).context(source)),
        Err(error) => Err(anyhow::Error::new(error).context(format!("the API URL {url}"))),
    }
}

/// A TOML basic string: JSON's string escapes are a subset of TOML's.
fn quote(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Checks the token against the API, then saves both.
pub(crate) async fn login(api_url: &str, token: Option<String>) -> anyhow::Result<()> {
    let token = match token {
        Some(token) => token,
        None => {
            eprint!("token: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    let client = ApiClient::with_endpoint(endpoint(api_url)?, Some(token.clone()));
    let me = client.get("/api/userinfo").await?;
    if !me.status.is_success() {
        bail!("the gateway refused the token ({})", me.status);
    }
    let path = config_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    writeln!(file, "api_url = {}", quote(api_url))?;
    writeln!(file, "token = {}", quote(&token))?;
    // The CA that just verified the gateway, for later commands; by path,
    // so a renewed CA file is read as it is then.
    if let Some(ca) = ca_from_env() {
        let ca = std::path::absolute(&ca)?;
        let ca = ca
            .to_str()
            .with_context(|| format!("{TLS_CA_ENV} is not UTF-8"))?;
        writeln!(file, "tls_ca = {}", quote(ca))?;
    }
    println!(
        "logged in to {api_url} as {}; saved to {}",
        me.body["email"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(())
}
