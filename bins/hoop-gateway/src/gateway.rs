//! Starting a gateway: open the store, load the secret key, make sure an
//! administrator exists, and serve the API and the agent link.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hoop_proxy::link::AgentKey;
use hoop_proxy::recorder::journal::AuditJournal;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, ADMIN_GROUP, AppState, ConnectionInput};
use crate::crypto::{self, SecretBox};
use crate::links::LinkRegistry;
use crate::store::{Store, StoreError, TokenRecord, UserRecord};

/// The audit journal's directory, in the data directory.
const JOURNAL_DIR: &str = "audit-journal";

/// The e-mail of the administrator made on first start.
pub const ADMIN_EMAIL: &str = "admin@localhost";

/// How to run a gateway. Its `Debug` leaves out the secret key, the admin
/// token and the database URL (which may carry a password).
#[derive(Clone)]
pub struct GatewayConfig {
    /// Where the REST API listens.
    pub api_listen: String,
    /// Where agents dial in.
    pub agent_listen: String,
    /// The agent address written into keys, when it differs from the
    /// listener (behind NAT or a load balancer).
    pub agent_advertise: Option<String>,
    /// The data directory: SQLite database and secret key.
    pub data_dir: PathBuf,
    /// Use PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// The secret key, base64 (`HOOP_SECRET_KEY`); else the data directory's.
    pub secret_key: Option<String>,
    /// A token to accept as the administrator's (`HOOP_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// TLS certificate chain (PEM) for the REST API, the agent listener
    /// and the native client listeners.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the REST API, the agent listener and the
    /// native client listeners.
    pub tls_key: Option<PathBuf>,
    /// Where PostgreSQL clients connect (user: connection name, password:
    /// access token); `None` serves none.
    pub postgres_listen: Option<String>,
    /// Where MySQL clients connect (user: connection name, password:
    /// access token); `None` serves none.
    pub mysql_listen: Option<String>,
    /// Time a client of the PostgreSQL or MySQL listener has to log in,
    /// its TLS handshake included: a silent or half-sent login holds a
    /// task and a socket until then.
    pub login_timeout: Duration,
    /// Time an API client has to send a whole request (head and body),
    /// and the longest an API connection waits for its next request.
    pub api_idle_timeout: Duration,
    /// Connections each client listener (the API, PostgreSQL, MySQL)
    /// serves at once; past it, a new client is refused in its own
    /// protocol while the others go on.
    pub max_connections: usize,
    /// How long a review waits for its reviewers before it expires
    /// (`EXPIRED`).
    pub review_timeout: Duration,
    /// The base URL of Slack's Web API, for the `slack` plugin.
    pub slack_api_url: String,
}

/// The defaults of [`GatewayConfig::login_timeout`] and
/// [`GatewayConfig::api_idle_timeout`]: as PostgreSQL's
/// `authentication_timeout`, long enough for a person typing a password
/// at a prompt.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`GatewayConfig::max_connections`]: under the usual
/// limit of 1024 open files per process, with room for the store, the
/// agent links and the in-place sessions' server connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("api_listen", &self.api_listen)
            .field("agent_listen", &self.agent_listen)
            .field("agent_advertise", &self.agent_advertise)
            .field("data_dir", &self.data_dir)
            .field("postgres", &self.database_url.is_some())
            .field("tls", &self.tls_cert.is_some())
            .field("postgres_listen", &self.postgres_listen)
            .field("mysql_listen", &self.mysql_listen)
            .field("login_timeout", &self.login_timeout)
            .field("api_idle_timeout", &self.api_idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("review_timeout", &self.review_timeout)
            .finish_non_exhaustive()
    }
}

impl GatewayConfig {
    /// The defaults of `hoop up`: API on 127.0.0.1:8009, agents on
    /// 127.0.0.1:8010, data in `./hoop-data`; no native client listener
    /// (the command line turns them on).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            api_listen: "127.0.0.1:8009".into(),
            agent_listen: "127.0.0.1:8010".into(),
            agent_advertise: None,
            data_dir: data_dir.into(),
            database_url: None,
            secret_key: None,
            admin_token: None,
            tls_cert: None,
            tls_key: None,
            postgres_listen: None,
            mysql_listen: None,
            login_timeout: DEFAULT_CLIENT_TIMEOUT,
            api_idle_timeout: DEFAULT_CLIENT_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            review_timeout: crate::reviews::DEFAULT_REVIEW_TIMEOUT,
            slack_api_url: crate::slack::DEFAULT_API_URL.into(),
        }
    }
}

/// Why a gateway could not start or act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The secret key is unusable.
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    /// The data directory could not be made, or a listener's address read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A listener could not be bound (most often: another gateway, or a
    /// second `hoop up`, already listens there).
    #[error("cannot listen on {address} for {what}: {reason}; {hint}")]
    Listen {
        /// The address, as configured.
        address: String,
        /// What the listener serves.
        what: &'static str,
        /// What the person can do about it: the flag that moves it.
        hint: String,
        /// Why the bind failed (in the message, not a source: the
        /// message is the whole story, printed once).
        reason: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// A connection from the configuration was refused.
    #[error("connection {name}: {message}")]
    Connection {
        /// The connection's name.
        name: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// No agent has this name.
    #[error("no agent named {0}")]
    UnknownAgent(String),
    /// `--tls-cert` without `--tls-key`, or the reverse.
    #[error("--tls-cert and --tls-key go together")]
    TlsHalf,
}

/// Binds `address` for `what`, naming the address and `flag` (and `off`
/// when the listener is optional) if that fails.
async fn listen(
    address: &str,
    what: &'static str,
    flag: &str,
    optional: bool,
) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(address)
        .await
        .map_err(|reason| GatewayError::Listen {
            address: address.to_owned(),
            what,
            hint: if optional {
                format!("is another gateway running? choose another address with {flag} ADDRESS, or {flag} off")
            } else {
                format!("is another gateway running? choose another address with {flag} ADDRESS")
            },
            reason,
        })
}

/// A running gateway; dropping it stops its listeners.
#[derive(Debug)]
pub struct Gateway {
    /// The API's bound address.
    pub api_addr: SocketAddr,
    /// The agent listener's bound address.
    pub agent_addr: SocketAddr,
    /// The PostgreSQL client listener's bound address, when serving one.
    pub postgres_addr: Option<SocketAddr>,
    /// The MySQL client listener's bound address, when serving one.
    pub mysql_addr: Option<SocketAddr>,
    /// Whether the client listeners offer TLS (a certificate is
    /// configured) and refuse plain text off loopback. The API then
    /// speaks only TLS (see [`Gateway::api_url`]).
    pub listener_tls: bool,
    /// The administrator token made on this (first) start, to print once.
    pub first_admin_token: Option<String>,
    state: AppState,
    /// The API and the client listeners: what takes new sessions.
    tasks: Vec<JoinHandle<()>>,
    /// The agent link server; it outlives the others while the gateway
    /// stops, for the agents' last audit batches.
    link_task: JoinHandle<()>,
    /// The event writer, drained when the gateway stops.
    events_task: Option<JoinHandle<()>>,
}

/// How long a stopping gateway waits for its sessions to end and their
/// last events to arrive: what comes later from an agent is sent again to
/// the next gateway.
const SHUTDOWN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for Gateway {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.link_task.abort();
        if let Some(task) = &self.events_task {
            task.abort();
        }
        if let Some(socket) = &self.state.connect_socket {
            let _ = std::fs::remove_file(&socket.path);
        }
    }
}

impl Gateway {
    /// Opens the store and starts serving.
    ///
    /// # Errors
    ///
    /// When the data directory, store, key, TLS files or listeners fail.
    pub async fn start(config: GatewayConfig) -> Result<Self, GatewayError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = match &config.database_url {
            Some(url) => Store::open_postgres(url).await?,
            None => Store::open_sqlite(&config.data_dir.join("hoop.db")).await?,
        };
        let secrets = SecretBox::load(&config.data_dir, config.secret_key.as_deref())?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::link_server::tls_acceptor(cert, key)?),
            (None, None) => None,
            _ => return Err(GatewayError::TlsHalf),
        };
        let api_listener = listen(&config.api_listen, "the API", "--api-listen", false).await?;
        let agent_listener =
            listen(&config.agent_listen, "agents", "--agent-listen", false).await?;
        let postgres_listener = match &config.postgres_listen {
            Some(address) => {
                Some(listen(address, "PostgreSQL clients", "--postgres-listen", true).await?)
            }
            None => None,
        };
        let postgres_addr = match &postgres_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };
        let mysql_listener = match &config.mysql_listen {
            Some(address) => Some(listen(address, "MySQL clients", "--mysql-listen", true).await?),
            None => None,
        };
        let mysql_addr = match &mysql_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };
        let api_addr = api_listener.local_addr()?;
        let agent_addr = agent_listener.local_addr()?;
        // The journal of the sessions recorded in this process; what an
        // earlier process left in it is stored first.
        let (journal, leftovers) = AuditJournal::open(&config.data_dir.join(JOURNAL_DIR))?;
        crate::sessions::store_leftovers(&store, leftovers).await;
        let (events, events_task) =
            crate::sessions::EventWriter::spawn(store.clone(), Some(journal));
        // Without the socket, `hoop connect` tunnels; nothing else is lost.
        let connect_socket = match crate::same_host::bind(&config.data_dir) {
            Ok(bound) => Some(bound),
            Err(error) => {
                tracing::warn!(%error, "no handoff socket; hoop connect will tunnel");
                None
            }
        };
        let state = AppState {
            events,
            store,
            secrets: Arc::new(secrets),
            links: LinkRegistry::default(),
            agent_address: config
                .agent_advertise
                .clone()
                .unwrap_or_else(|| agent_addr.to_string())
                .into(),
            agent_tls: tls.is_some(),
            connect_socket: connect_socket
                .as_ref()
                .map(|(_, socket)| Arc::new(socket.clone())),
            live: crate::live::LiveSessions::default(),
            review_timeout: config.review_timeout,
            slack_api_url: config.slack_api_url.as_str().into(),
        };
        let first_admin_token = bootstrap_admin(&state, config.admin_token.as_deref()).await?;
        // Sessions left open by a gateway that stopped cannot continue.
        // (Gateways sharing PostgreSQL: only those older than this start.)
        state
            .store
            .fail_open_sessions("the gateway restarted")
            .await?;
        let limits = crate::listeners::Limits {
            login_timeout: config.login_timeout,
            api_idle_timeout: config.api_idle_timeout,
            max_connections: config.max_connections,
        };
        let router = api::router(state.clone(), limits.api_idle_timeout);
        // One certificate for the API, the agent link and the client
        // listeners. With it the API speaks only TLS: every request
        // carries a token, which must not cross the network in clear text.
        let api_task = tokio::spawn(api::serve(api_listener, tls.clone(), router, limits));
        let link_task = tokio::spawn(crate::link_server::serve(
            agent_listener,
            tls.clone(),
            state.clone(),
        ));
        let live_task = tokio::spawn(state.live.clone().watch(state.clone()));
        let reviews_task = tokio::spawn(crate::reviews::sweep(state.clone()));
        let webhooks_task = tokio::spawn(crate::webhooks::deliver(state.clone()));
        let mut tasks = vec![api_task, live_task, reviews_task, webhooks_task];
        if let Some(listener) = postgres_listener {
            tasks.push(tokio::spawn(crate::native::serve_postgres(
                listener,
                tls.clone(),
                state.clone(),
                limits,
            )));
        }
        if let Some(listener) = mysql_listener {
            tasks.push(tokio::spawn(crate::native_mysql::serve_mysql(
                listener,
                tls.clone(),
                state.clone(),
                limits,
            )));
        }
        if let Some((listener, socket)) = connect_socket {
            tasks.push(tokio::spawn(crate::same_host::serve(
                listener,
                socket.instance_id,
                state.clone(),
            )));
        }
        tracing::info!(api = %api_addr, agents = %agent_addr, store = state.store.backend(), "gateway started");
        Ok(Self {
            api_addr,
            agent_addr,
            postgres_addr,
            mysql_addr,
            listener_tls: tls.is_some(),
            first_admin_token,
            state,
            tasks,
            link_task,
            events_task: Some(events_task),
        })
    }

    /// Stops, as on SIGTERM, losing no audit: takes no new session (the
    /// API and the listeners stop), ends every session (agents are told
    /// to close their streams; in-place sessions are cut, their recorders
    /// still recording their end), waits up to 5 seconds for their records
    /// to close and the agents' last batches, stores every
    /// batch received, and closes the records still open as failed
    /// (`the gateway shut down`). An agent's batches that arrive too late
    /// go to the next gateway it links to. When it returns, every
    /// listener is closed.
    pub async fn shutdown(mut self) {
        let deadline = std::time::Instant::now() + SHUTDOWN_PATIENCE;
        let events = &self.state.events;
        events.stop_sessions();
        let end = hoop_proxy::link::messages::SessionEnd {
            status: "failed".into(),
            error: Some(crate::sessions::SHUT_DOWN.into()),
            exit_code: Some(1),
            truncated: false,
        };
        if let Ok(reason) = serde_json::to_vec(&end) {
            self.state.links.end_streams(&reason.into());
        }
        // The listeners' tasks hold their sessions: they go once those
        // have recorded how they ended.
        events.sessions_ended(deadline).await;
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        if let Some(task) = self.events_task.take() {
            events.drain(&self.state.store, task, deadline).await;
        }
        // Awaited, not only aborted: when this returns the listeners are
        // closed, so a gateway started next on the same addresses binds.
        self.link_task.abort();
        for task in tasks {
            let _ = task.await;
        }
        let _ = (&mut self.link_task).await;
        tracing::info!("gateway stopped");
    }

    /// The API's URL: `https://ADDRESS` when the gateway has a
    /// certificate, `http://ADDRESS` otherwise. For banners and clients.
    pub fn api_url(&self) -> String {
        let scheme = if self.listener_tls { "https" } else { "http" };
        format!("{scheme}://{}", self.api_addr)
    }

    /// The shared state (store, links), for embedding.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Makes sure an agent named `name` exists in `embedded` mode and gives
    /// it a fresh key (the previous secret stops working), for an agent
    /// that runs inside this process.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn embedded_agent_key(&self, name: &str) -> Result<AgentKey, GatewayError> {
        let secret = crypto::new_token()?;
        match self.state.store.find_agent(name).await? {
            Some(agent) => {
                self.state
                    .store
                    .set_agent_key_hash(&agent.id, &crypto::hash_token(&secret))
                    .await?;
                Ok(AgentKey {
                    name: agent.name,
                    secret,
                    address: self.state.agent_address.to_string(),
                    tls: self.state.agent_tls,
                    mode: agent.mode,
                })
            }
            None => match api::register_agent(&self.state, name, "embedded").await {
                Ok((_, key)) => Ok(key),
                Err(error) => Err(GatewayError::Connection {
                    name: name.to_owned(),
                    message: error.message().to_owned(),
                }),
            },
        }
    }

    /// Serves the connect sessions of the agent named `name`, which runs in
    /// this process, in place: their driver runs here on the client's own
    /// stream, without the link's hop (see [`crate::in_place`]). Exec
    /// sessions and the agent's status still go over its link.
    ///
    /// # Errors
    ///
    /// When the store fails or no agent has that name.
    pub async fn serve_in_place(&self, name: &str) -> Result<(), GatewayError> {
        let agent = self
            .state
            .store
            .find_agent(name)
            .await?
            .ok_or_else(|| GatewayError::UnknownAgent(name.to_owned()))?;
        self.state.links.serve_in_place(&agent.id);
        Ok(())
    }

    /// Creates or rewrites each connection (by name), with the API's checks.
    ///
    /// # Errors
    ///
    /// The first connection refused, naming its field; earlier ones stay.
    pub async fn apply_connections(
        &self,
        connections: &[ConnectionInput],
    ) -> Result<Vec<Value>, GatewayError> {
        let mut applied = Vec::with_capacity(connections.len());
        for input in connections {
            let body = api::upsert_connection(&self.state, input)
                .await
                .map_err(|e| GatewayError::Connection {
                    name: input.name.clone(),
                    message: e.message().to_owned(),
                })?;
            applied.push(body);
        }
        Ok(applied)
    }
}

/// Makes the `admin` group and administrator on first start; accepts
/// `admin_token` when given. Returns a token to print when one was made.
async fn bootstrap_admin(
    state: &AppState,
    admin_token: Option<&str>,
) -> Result<Option<String>, GatewayError> {
    match state.store.insert_group(ADMIN_GROUP).await {
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(error) => return Err(error.into()),
    }
    let (admin, created) = match state.store.find_user(ADMIN_EMAIL).await? {
        Some(user) => (user, false),
        None => {
            let user = UserRecord {
                id: crypto::new_id()?,
                email: ADMIN_EMAIL.into(),
                name: "Administrator".into(),
                status: "active".into(),
                groups: vec![ADMIN_GROUP.into()],
                created_at: crate::store::now(),
            };
            match state.store.insert_user(&user).await {
                Ok(()) => (user, true),
                // Another gateway on the same database won the race.
                Err(StoreError::Conflict) => match state.store.find_user(ADMIN_EMAIL).await? {
                    Some(user) => (user, false),
                    None => return Err(StoreError::Conflict.into()),
                },
                Err(error) => return Err(error.into()),
            }
        }
    };
    if let Some(token) = admin_token {
        let record = TokenRecord {
            id: crypto::new_id()?,
            name: "HOOP_ADMIN_TOKEN".into(),
            user_id: admin.id.clone(),
            token_hash: crypto::hash_token(token),
            created_at: crate::store::now(),
        };
        match state.store.insert_token(&record).await {
            // Conflict: known already, from an earlier start or from another
            // gateway on the same database starting at the same moment.
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(error) => return Err(error.into()),
        }
        return Ok(None);
    }
    if !created {
        return Ok(None);
    }
    let (_, token) = api::issue_admin_token(state, &admin.id, "first start", None)
        .await
        .map_err(|e| GatewayError::Connection {
            name: "admin".into(),
            message: e.message().to_owned(),
        })?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_out_secrets() {
        let mut config = GatewayConfig::new("/tmp/x");
        config.secret_key = Some("c2VjcmV0LWtleQ==".into());
        config.admin_token = Some("admin-token-value".into());
        config.database_url = Some("postgres://u:db-password@h/db".into());
        let text = format!("{config:?}");
        for secret in ["c2VjcmV0LWtleQ==", "admin-token-value", "db-password"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
