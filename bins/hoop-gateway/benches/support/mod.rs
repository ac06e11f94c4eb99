//! What the gateway's load benches share: when to run, and on which stores.

use std::future::Future;

/// Runs `load` on SQLite, then on PostgreSQL when `HOOP_BENCH_DATABASE_URL`
/// names one, on a two-worker runtime like the gateway's. `cargo bench`
/// passes `--bench`; `cargo test --benches` passes nothing, and then
/// nothing runs.
pub(crate) fn on_each_store<F, Fut>(load: F)
where
    F: Fn(&'static str, Option<String>) -> Fut,
    Fut: Future<Output = ()>,
{
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        load("sqlite", None).await;
        if let Ok(url) = std::env::var("HOOP_BENCH_DATABASE_URL") {
            load("postgres", Some(url)).await;
        }
    });
}
