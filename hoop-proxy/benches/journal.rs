//! What the audit journal costs a statement recorded in the gateway's own
//! process (`hoop up`): one append of a typical statement event (about 200
//! bytes) before the statement's answer leaves. The baseline is the floor
//! under it: the same bytes written with one `write(2)` each, with no lock
//! and no serialising.
//!
//! ```text
//! cargo bench -p hoop-proxy --bench journal
//! ```

use std::io::Write;

use criterion::{Criterion, Throughput};
use hoop_proxy::recorder::journal::{AuditJournal, JournalHolds, Leftovers};

/// Appends between releases: rotated segments are removed once released,
/// so the bench's disk use stays a few segments.
const RELEASE_EVERY: u64 = 10_000;

fn journal(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("hoop-journal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let event = serde_json::value::to_raw_value(&serde_json::json!({
        "seq": 41, "type": "statement", "time": 1_796_690_164_256_i64,
        "statement": "SELECT abalance FROM pgbench_accounts WHERE aid = 48211;",
        "tag": "SELECT 1", "rows": 1, "duration_ms": 0.264, "refused": false,
    }))
    .unwrap();
    let session = "17eeae0f-65bc-447a-bf71-6d59361d01dd";
    let (journal, _) = AuditJournal::open(&dir).unwrap();

    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append", |b| {
        let mut holds = JournalHolds::default();
        let mut appended = 0u64;
        b.iter(|| {
            journal.append(session, &event, &mut holds);
            appended += 1;
            if appended.is_multiple_of(RELEASE_EVERY) {
                std::mem::take(&mut holds).release();
            }
        });
        assert!(!holds.is_empty(), "nothing was journaled");
        holds.release();
    });
    let line = format!(r#"{{"session_id":"{session}","event":{}}}"#, event.get()) + "\n";
    let mut file = std::fs::File::create(dir.join("baseline")).unwrap();
    let mut written = 0u64;
    group.bench_function("write_baseline", |b| {
        b.iter(|| {
            file.write_all(line.as_bytes()).unwrap();
            written += 1;
            if written.is_multiple_of(RELEASE_EVERY) {
                file.set_len(0).unwrap();
            }
        });
    });
    group.finish();
    journal.close();
    let (_, leftovers) = AuditJournal::open(&dir).unwrap();
    let last = leftovers.segments().last().cloned();
    // Everything appended was released: no segment holds an event.
    assert!(
        last.is_none_or(|segment| Leftovers::read(&segment).unwrap().is_empty()),
        "a released segment was left behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// What criterion_group!/criterion_main! expand to, without the undocumented
// public function they generate.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    journal(&mut criterion);
    criterion.final_summary();
}
