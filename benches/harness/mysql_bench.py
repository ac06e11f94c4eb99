#!/usr/bin/env python3
"""MySQL proxy benchmark: direct vs. bare relay vs. hoop, in one run.

Starts a private MariaDB (Debian 12's 10.11: loopback, high port, a user
with mysql_native_password), the bare relay (benches/src/bin/bare_relay.rs:
tokio::io::copy_bidirectional, parses nothing) and hoop
(examples/mysql_proxy.rs, release build, no policy), then interleaves
repetitions of:

  - sysbench oltp_point_select and oltp_read_only with 1 and 8 threads;
  - a large result (ROWS rows of mixed text) read by the mariadb CLI
    (--quick, into /dev/null).

For every configuration it prints the median tps and latency, the proxy's
CPU time per transaction (utime+stime of the proxy process from /proc, the
steadiest measure on a noisy 2-core machine), the ratios hoop/relay and
hoop/direct, and the proxy's peak RSS (VmHWM).

Usage (from the workspace root, on a quiet machine):
    python3 benches/harness/mysql_bench.py [--duration 10] [--reps 3] [--rows 3000000]
        [--workloads oltp_point_select,oltp_read_only] [--threads 1,8]
It builds what it needs first (cargo build --release), and cleans up every
process and directory it started, also on Ctrl-C.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from proxy_bench import cpu_seconds, free_port, peak_rss_mb, start_proxies, wait_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
USER, PASSWORD, DB = "bench", "bench-pw", "bench"
WORKLOADS = ("oltp_point_select", "oltp_read_only")

started = []  # (name, Popen): proxies and the server
data_dir = None



def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)



def start_server():
    """A private MariaDB, so other work on the machine's server does not
    disturb the figures (and the figures do not disturb it)."""
    global data_dir
    data_dir = tempfile.mkdtemp(prefix="hoop-mybench-")
    os.chmod(data_dir, 0o755)
    owner = ["--user=mysql"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        run(["chown", "mysql:mysql", data_dir])
    run(["mariadb-install-db", *owner, f"--datadir={data_dir}/data", "--auth-root-authentication-method=normal",
         "--skip-test-db"])
    port = free_port()
    server = subprocess.Popen(
        ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data_dir}/data", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={data_dir}/my.sock", f"--pid-file={data_dir}/my.pid",
         "--innodb-buffer-pool-size=256M", "--innodb-flush-log-at-trx-commit=0", "--max-connections=200",
         *owner],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    started.append(("mariadbd", server))
    wait_port(port)
    run(["mariadb", f"--socket={data_dir}/my.sock", "-uroot", "-e",
         f"CREATE DATABASE {DB}; CREATE USER '{USER}'@'%' IDENTIFIED VIA mysql_native_password "
         f"USING PASSWORD('{PASSWORD}'); GRANT ALL ON *.* TO '{USER}'@'%';"])
    return port


def cleanup(*_):
    for _, proc in reversed(started):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)




def sysbench_args(port, workload, table_size):
    return ["sysbench", workload, "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
            f"--mysql-user={USER}", f"--mysql-password={PASSWORD}", f"--mysql-db={DB}", "--tables=1",
            f"--table-size={table_size}", "--mysql-ssl=off"]


def sysbench(port, workload, threads, duration, table_size):
    out = run(sysbench_args(port, workload, table_size)
              + [f"--threads={threads}", f"--time={duration}", "--report-interval=0", "run"]).stdout
    txns, tps = re.search(r"transactions:\s+(\d+)\s+\(([\d.]+) per sec", out).groups()
    lat = float(re.search(r"avg:\s+([\d.]+)", out).group(1))
    errors = int(re.search(r"ignored errors:\s+(\d+)", out).group(1))
    if errors:
        raise RuntimeError(f"sysbench reported {errors} errors through port {port}")
    return float(tps), lat, int(txns)


def large_result(port, rows):
    sql = (f"SELECT seq, MD5(seq) AS h, REPEAT(CHAR(65 + seq % 26), seq % 40) AS pad, "
           f"CONCAT('user', seq, '@example.com') AS email FROM seq_1_to_{rows}")
    start = time.monotonic()
    with open(os.devnull, "w") as sink:
        subprocess.run(["mariadb", "-h127.0.0.1", f"-P{port}", f"-u{USER}", f"-p{PASSWORD}", "-N", "-B",
                        "--quick", DB, "-e", sql], stdout=sink, check=True)
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per sysbench run")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows of the large result")
    parser.add_argument("--table-size", type=int, default=100_000, help="sysbench table size")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="sysbench workloads, comma-separated")
    parser.add_argument("--threads", default="1,8", help="sysbench thread counts, comma-separated")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--policy", nargs="?", const="{}", default=None, metavar="FILE",
                        help="also run hoop with this policy file ('hoop+pol'); "
                             "without FILE, the default policy {}")
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "hoop-examples", "--example", "mysql_proxy"],
                       cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "hoop-benches", "--bin", "bare_relay"],
                       cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    signal.signal(signal.SIGTERM, cleanup)
    try:
        my_port = start_server()
        run(sysbench_args(my_port, "oltp_point_select", args.table_size) + ["prepare"])

        hoop_env = dict(os.environ, HOST="127.0.0.1", PORT=str(my_port), USER=USER, PASS=PASSWORD, DB=DB,
                        SSLMODE="disable", RUST_LOG="warn")
        targets = start_proxies(target, "mysql_proxy", my_port, hoop_env, args.policy, started)
        names = [t[0] for t in targets]

        results = {}  # (workload, threads, target) -> list of (tps, lat, cpu_us_per_txn)
        large = {}  # target -> list of (seconds, cpu seconds)
        print(f"# load before: {open('/proc/loadavg').read().strip()}", flush=True)
        for rep in range(args.reps):
            for workload in workloads:
                for threads in thread_counts:
                    for name, port, pid in targets:
                        cpu0 = cpu_seconds(pid) if pid else 0
                        tps, lat, txns = sysbench(port, workload, threads, args.duration, args.table_size)
                        cpu = (cpu_seconds(pid) - cpu0) * 1e6 / txns if pid else float("nan")
                        results.setdefault((workload, threads, name), []).append((tps, lat, cpu))
                        print(f"rep {rep + 1} {workload:17} t={threads} {name:6} tps={tps:9.1f} lat={lat:.3f}ms "
                              f"proxy_cpu={cpu:.1f}us/txn", flush=True)
            for name, port, pid in targets:
                cpu0 = cpu_seconds(pid) if pid else 0
                secs = large_result(port, args.rows)
                cpu = cpu_seconds(pid) - cpu0 if pid else float("nan")
                large.setdefault(name, []).append((secs, cpu))
                print(f"rep {rep + 1} large             {name:8} {secs:.2f}s {args.rows / secs:,.0f} rows/s "
                      f"proxy_cpu={cpu:.2f}s", flush=True)
        print(f"# load after: {open('/proc/loadavg').read().strip()}")

        med = statistics.median
        print("\n## sysbench (median of %d runs of %ds, table of %s rows)\n"
              % (args.reps, args.duration, f"{args.table_size:,}"))
        print("| workload | threads | direct tps | relay tps | hoop tps | hoop/relay | hoop/direct | "
              "relay lat ms | hoop lat ms | relay CPU us/txn | hoop CPU us/txn |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for workload in workloads:
            for threads in thread_counts:
                r = {n: results[(workload, threads, n)] for n in names}
                tps = {n: med([x[0] for x in v]) for n, v in r.items()}
                lat = {n: med([x[1] for x in v]) for n, v in r.items()}
                cpu = {n: med([x[2] for x in v]) for n, v in r.items()}
                print(f"| {workload} | {threads} | {tps['direct']:.0f} | {tps['relay']:.0f} | {tps['hoop']:.0f} | "
                      f"{tps['hoop'] / tps['relay']:.3f} | {tps['hoop'] / tps['direct']:.3f} | "
                      f"{lat['relay']:.3f} | {lat['hoop']:.3f} | {cpu['relay']:.1f} | {cpu['hoop']:.1f} |")
                if "hoop+pol" in tps:
                    print(f"|   hoop+pol | {threads} | | | {tps['hoop+pol']:.0f} | {tps['hoop+pol'] / tps['relay']:.3f} | "
                          f"{tps['hoop+pol'] / tps['direct']:.3f} | | {lat['hoop+pol']:.3f} | | {cpu['hoop+pol']:.1f} |")
        print("\n## large result: %s rows read by the mariadb CLI (median of %d)\n" % (f"{args.rows:,}", args.reps))
        print("| target | seconds | rows/s | proxy CPU s | ratio to relay |")
        print("|---|---|---|---|---|")
        relay_secs = med([x[0] for x in large["relay"]])
        for name in names:
            secs = med([x[0] for x in large[name]])
            cpu = med([x[1] for x in large[name]])
            print(f"| {name} | {secs:.2f} | {args.rows / secs:,.0f} | {cpu:.2f} | {relay_secs / secs:.3f} |")
        pids = {name: pid for name, _, pid in targets}
        print(f"\nproxy peak RSS: hoop {peak_rss_mb(pids['hoop']):.1f} MB, relay {peak_rss_mb(pids['relay']):.1f} MB")
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
