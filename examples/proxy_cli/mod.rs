//! What `pg_proxy` and `mysql_proxy` share: the client-leg options of their
//! command lines, logging, the runtime, and serving until Ctrl-C.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use hoop_proxy::Secret;
use hoop_proxy::auth::SharedSecret;
use hoop_proxy::driver::{Builder, Protocol};
use hoop_proxy::policy::PolicyPipeline;
use tokio::net::TcpListener;

/// Options every proxy example takes.
#[derive(clap::Args)]
pub(crate) struct ProxyArgs {
    /// Password clients must send; without it, clients need none.
    #[arg(long, env = "HOOP_CLIENT_PASSWORD", hide_env_values = true)]
    client_password: Option<String>,
    /// PEM certificate chain for TLS on the client leg.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the client leg.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Masking and guardrail policy (JSON, see `examples/policy.json`);
    /// without it, traffic passes untouched.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

impl ProxyArgs {
    /// Sets up logging (`RUST_LOG`, `warn` by default) and the runtime, and
    /// runs `main` on it.
    ///
    /// # Errors
    ///
    /// The runtime's, or whatever `main` returns.
    pub(crate) fn run<F>(&self, main: F) -> anyhow::Result<()>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .init();
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = self.threads {
            runtime.worker_threads(threads);
        }
        runtime.enable_all().build()?.block_on(main)
    }

    /// Applies the client password, client-leg TLS and policy to `builder`.
    ///
    /// # Errors
    ///
    /// Unreadable TLS files or policy, or a policy that does not compile.
    pub(crate) fn configure<P: Protocol>(
        &self,
        mut builder: Builder<P>,
    ) -> anyhow::Result<Builder<P>> {
        if let Some(password) = &self.client_password {
            builder =
                builder.authenticator(Arc::new(SharedSecret::new(Secret::new(password.clone()))));
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            builder = builder.client_tls(hoop_proxy::tls::acceptor_from_files(cert, key)?);
        }
        if let Some(path) = &self.policy {
            let json = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the policy {}", path.display()))?;
            let pipeline = PolicyPipeline::from_json(&json)
                .with_context(|| format!("policy {}", path.display()))?;
            builder = builder.pipeline(Arc::new(pipeline));
        }
        Ok(builder)
    }
}

/// Listens on `listen` and runs `serve` on the listener until it returns
/// or Ctrl-C, announcing the address as `name` on stderr.
///
/// # Errors
///
/// When the address cannot be bound or the signal handler fails.
pub(crate) async fn serve_until_ctrl_c<S, Fut>(
    name: &str,
    listen: SocketAddr,
    serve: S,
) -> anyhow::Result<()>
where
    S: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = ()>,
{
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("{name} listening on {}", listener.local_addr()?);
    tokio::select! {
        () = serve(listener) => Ok(()),
        signal = tokio::signal::ctrl_c() => Ok(signal?),
    }
}
