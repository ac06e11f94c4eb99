//! Issue 13, item 1: masking a 50 MB cell must not stall the process. On
//! `main` before the fix, `select repeat('user@example.com ', n)` on a `dlp`
//! connection spent many seconds of CPU on a runtime worker (the masker's
//! leak check was quadratic), the gateway's API stopped answering and other
//! sessions stalled.
//!
//! While one session reads a 50 MB cell through the gateway and its embedded
//! agent (the real PostgreSQL at 127.0.0.1:5432), a prober on a thread of its
//! own, with its own runtime (as a separate client process would be), asks
//! `GET /api/healthz` on a fresh connection and `SELECT 1` on another session
//! over and over: the answers must come within 100 ms and 200 ms (see
//! [`assert_responsive`] for how a loaded machine is allowed for). Run both
//! with the default policy (the cell is past `max_cell_bytes` and masked whole
//! by the first email) and with the limit raised past the cell (every one of
//! its three million emails masked: the longest single step the relay can
//! take, handed off by `block_in_place`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::json;

mod common;

use common::*;

/// The bounds the issue sets.
const HEALTHZ_BOUND: Duration = Duration::from_millis(100);
const SELECT_BOUND: Duration = Duration::from_millis(200);

/// No answer may take this long: a stalled runtime.
const STALL: Duration = Duration::from_secs(1);

/// `'user@example.com '` (17 bytes) this many times: a 50 MB cell.
const REPEATS: usize = 50_000_000 / 17;

/// One probe: when it started and how long each answer took.
#[derive(Debug, Clone, Copy)]
struct Probe {
    at: Instant,
    healthz: Duration,
    select: Duration,
}

/// `GET /api/healthz` on a fresh connection: the time to a whole `200 OK`.
async fn healthz(api: std::net::SocketAddr) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let start = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
    stream
        .write_all(b"GET /api/healthz HTTP/1.1\r\nHost: hoop\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    start.elapsed()
}

/// Probes until `stop`, from a thread with its own runtime; another session
/// (`user` on the gateway's PostgreSQL listener) answers the `SELECT 1`s.
fn start_prober(
    api: std::net::SocketAddr,
    listener: std::net::SocketAddr,
    user: String,
    token: String,
    database: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Probe>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(
                &format!(
                    "host={} port={} user={user} password={token} dbname={database}",
                    listener.ip(),
                    listener.port()
                ),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(connection);
            let mut probes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let at = Instant::now();
                let healthz = healthz(api).await;
                let start = Instant::now();
                let rows = client.simple_query("SELECT 1").await.unwrap();
                let select = start.elapsed();
                assert!(rows.len() >= 2, "one row and the completion");
                probes.push(Probe {
                    at,
                    healthz,
                    select,
                });
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            probes
        })
    })
}

/// Reads the 50 MB cell through connection `name` with psql while the
/// prober runs; returns psql's output and the probes taken meanwhile.
async fn read_cell_while_probing(setup: &Setup, name: &str) -> (String, Vec<Probe>) {
    let stop = Arc::new(AtomicBool::new(false));
    let api: std::net::SocketAddr = setup
        .gateway
        .api_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let prober = start_prober(
        api,
        setup.gateway.postgres_addr.unwrap(),
        name.to_owned(),
        setup.token.clone(),
        setup.database.clone(),
        Arc::clone(&stop),
    );
    // The prober's session is open and answering before the big read starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let output = setup
        .run_psql(
            name,
            &setup.token,
            &format!("SELECT repeat('user@example.com ', {REPEATS})"),
        )
        .await;
    let end = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let probes = tokio::task::spawn_blocking(move || prober.join().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let during: Vec<Probe> = probes
        .into_iter()
        .filter(|p| p.at >= start && p.at <= end)
        .collect();
    (stdout(&output), during)
}

/// The bounds hold for 99% of the probes, and no probe waits a second: on a
/// loaded 2-core machine the slowest of a thousand probes is the kernel's
/// scheduling, not the gateway's: with four CPU hogs beside this test the
/// slowest probes took 240-290 ms, as much where the cell is masked whole in
/// microseconds as where it takes seconds, while the 99th percentile stayed
/// at 40-60 ms. The stall this test guards against held every answer for
/// seconds.
fn assert_responsive(during: &[Probe]) {
    assert!(
        during.len() >= 20,
        "too few probes while the cell was read: {during:?}"
    );
    let p99 = |mut times: Vec<Duration>| {
        times.sort_unstable();
        let slowest = times[times.len() - 1];
        (times[(times.len() - 1) * 99 / 100], slowest)
    };
    let (healthz, slowest_healthz) = p99(during.iter().map(|p| p.healthz).collect());
    let (select, slowest_select) = p99(during.iter().map(|p| p.select).collect());
    assert!(
        healthz <= HEALTHZ_BOUND
            && select <= SELECT_BOUND
            && slowest_healthz < STALL
            && slowest_select < STALL,
        "over {} probes: /api/healthz 99th percentile {healthz:?}, slowest \
         {slowest_healthz:?}; SELECT 1 99th percentile {select:?}, slowest {slowest_select:?}",
        during.len()
    );
}

async fn dlp_connection(setup: &Setup, name: &str) {
    setup
        .connection(
            name,
            5432,
            json!({"redact_enabled": true, "redact_types": ["EMAIL_ADDRESS"]}),
        )
        .await;
    setup.wait_status(name, "online").await;
}

/// The default policy, over the agent's link: the cell is past the default
/// `max_cell_bytes` and becomes the label of the first email found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_cell_masked_whole_over_the_link_leaves_the_api_and_other_sessions_answering() {
    let setup = Setup::start_with(false, Route::Link).await;
    dlp_connection(&setup, "dlp").await;
    let (out, during) = read_cell_while_probing(&setup, "dlp").await;
    assert_eq!(out, "[REDACTED:EMAIL_ADDRESS]\n");
    assert_responsive(&during);
    setup.stop().await;
}

/// In place, as `hoop up` serves sessions, with `max_cell_bytes` raised past
/// the cell: all of its emails are masked one by one in one relay step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_cell_masked_value_by_value_in_place_leaves_the_api_and_other_sessions_answering() {
    let setup = Setup::start_with(false, Route::InPlace).await;
    dlp_connection(&setup, "dlp").await;
    let response = setup
        .admin
        .json(
            Method::PUT,
            "/api/plugins/dlp",
            &json!({
                "config": {"max_cell_bytes": 64 << 20},
                "connections": [{"id": "dlp", "config": ["EMAIL_ADDRESS"]}],
            }),
        )
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let (out, during) = read_cell_while_probing(&setup, "dlp").await;
    assert_eq!(out.len(), REPEATS * "[REDACTED:EMAIL_ADDRESS] ".len() + 1);
    assert!(!out.contains('@'));
    assert!(out.starts_with("[REDACTED:EMAIL_ADDRESS] [REDACTED:EMAIL_ADDRESS] "));
    assert_responsive(&during);
    setup.stop().await;
}
