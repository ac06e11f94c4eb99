#!/usr/bin/env python3
"""PostgreSQL proxy benchmark: direct vs. bare relay vs. hoop, in one run.

Starts a private PostgreSQL cluster (15 on Debian 12) (SCRAM, loopback, high port), the bare
relay (benches/src/bin/bare_relay.rs: tokio::io::copy_bidirectional, parses
nothing) and hoop (examples/pg_proxy.rs, release build), then interleaves
repetitions of:

  - pgbench -S (select-only) with 1 and 8 clients, -M simple and -M extended;
  - a large result (ROWS rows of mixed text) read by psql into /dev/null.

For every configuration it prints the median tps and latency, the proxy's
CPU time per transaction (utime+stime of the proxy process from /proc, the
steadiest measure on a noisy 2-core machine), the ratios hoop/relay and
hoop/direct, and the proxy's peak RSS (VmHWM).

Usage (from the workspace root, on a quiet machine):
    python3 benches/harness/pg_bench.py [--duration 10] [--reps 3] [--rows 3000000]
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

from proxy_bench import cpu_seconds, free_port, peak_rss_mb, start_proxies

BIN = "/usr/lib/postgresql/%s/bin" % max(int(v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
USER, PASSWORD, DB = "bench", "bench-pw", "bench"

started = []  # (name, Popen) of proxies
cluster_dir = None



def as_postgres(args):
    return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + args


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def start_cluster():
    global cluster_dir
    cluster_dir = tempfile.mkdtemp(prefix="hoop-pgbench-")
    os.chmod(cluster_dir, 0o755)
    with open(os.path.join(cluster_dir, "pw"), "w") as f:
        f.write(PASSWORD)
    if os.geteuid() == 0:
        run(["chown", "-R", "postgres:postgres", cluster_dir])
    data = os.path.join(cluster_dir, "data")
    run(as_postgres([f"{BIN}/initdb", "-D", data, "-U", USER, "-N", "--auth-local=trust",
                     "--auth-host=scram-sha-256", f"--pwfile={cluster_dir}/pw"]))
    port = free_port()
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{cluster_dir}'\n"
                "fsync = off\nsynchronous_commit = off\nmax_connections = 100\nshared_buffers = 256MB\n")
    run(as_postgres([f"{BIN}/pg_ctl", "-D", data, "-l", f"{cluster_dir}/log", "-w", "start"]))
    return port


def stop_cluster():
    if cluster_dir and os.path.isdir(os.path.join(cluster_dir, "data")):
        subprocess.run(as_postgres([f"{BIN}/pg_ctl", "-D", os.path.join(cluster_dir, "data"),
                                    "-m", "immediate", "-w", "stop"]), capture_output=True)
    if cluster_dir:
        shutil.rmtree(cluster_dir, ignore_errors=True)


def cleanup(*_):
    for _, proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    stop_cluster()





def env_for(port):
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(port), PGUSER=USER,
               PGPASSWORD=PASSWORD, PGDATABASE=DB, PGSSLMODE="disable")
    return env


def pgbench(port, mode, clients, duration):
    out = run(["pgbench", "-n", "-S", "-M", mode, "-c", str(clients), "-j", str(min(clients, 2)),
               "-T", str(duration)], env=env_for(port)).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    txns = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    return tps, lat, txns


def large_result(port, rows):
    sql = (f"SELECT i, md5(i::text) AS h, repeat(chr(65 + i % 26), i % 40) AS pad, "
           f"'user' || i || '@example.com' AS email FROM generate_series(1, {rows}) i")
    start = time.monotonic()
    run(["psql", "-X", "-A", "-t", "-o", "/dev/null", "-c", sql], env=env_for(port))
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per pgbench run")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows of the large result")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--policy", nargs="?", const="{}", default=None, metavar="FILE",
                        help="also run hoop with this policy file ('hoop+pol'); "
                             "without FILE, the default policy {}")
    parser.add_argument("--modes", default="simple,extended", help="pgbench query modes")
    parser.add_argument("--clients", default="1,8", help="pgbench client counts")
    args = parser.parse_args()
    modes = args.modes.split(",")
    client_counts = [int(c) for c in args.clients.split(",")]

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "hoop-examples", "--example", "pg_proxy"],
                       cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "hoop-benches", "--bin", "bare_relay"],
                       cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    signal.signal(signal.SIGTERM, cleanup)
    try:
        pg_port = start_cluster()
        run(["psql", "-X", "-q", "-c", f"CREATE DATABASE {DB}"], env=dict(env_for(pg_port), PGDATABASE="postgres"))
        run(["pgbench", "-i", "-q", "-s", str(args.scale)], env=env_for(pg_port))

        hoop_env = dict(os.environ, HOST="127.0.0.1", PORT=str(pg_port), USER=USER, PASS=PASSWORD, DB=DB,
                        SSLMODE="disable", RUST_LOG="warn")
        targets = start_proxies(target, "pg_proxy", pg_port, hoop_env, args.policy, started)
        names = [t[0] for t in targets]

        results = {}  # (mode, clients, target) -> list of (tps, lat, cpu_us_per_txn)
        large = {}  # target -> list of (seconds, cpu seconds)
        print(f"# load before: {open('/proc/loadavg').read().strip()}", flush=True)
        for rep in range(args.reps):
            for mode in modes:
                for clients in client_counts:
                    for name, port, pid in targets:
                        cpu0 = cpu_seconds(pid) if pid else 0
                        tps, lat, txns = pgbench(port, mode, clients, args.duration)
                        cpu = (cpu_seconds(pid) - cpu0) * 1e6 / txns if pid else float("nan")
                        results.setdefault((mode, clients, name), []).append((tps, lat, cpu))
                        print(f"rep {rep + 1} {mode:8} c={clients} {name:6} tps={tps:9.1f} lat={lat:.3f}ms "
                              f"proxy_cpu={cpu:.1f}us/txn", flush=True)
            for name, port, pid in targets:
                cpu0 = cpu_seconds(pid) if pid else 0
                secs = large_result(port, args.rows)
                cpu = cpu_seconds(pid) - cpu0 if pid else float("nan")
                large.setdefault(name, []).append((secs, cpu))
                print(f"rep {rep + 1} large    {name:8} {secs:.2f}s {args.rows / secs:,.0f} rows/s proxy_cpu={cpu:.2f}s",
                      flush=True)
        print(f"# load after: {open('/proc/loadavg').read().strip()}")

        med = lambda xs: statistics.median(xs)
        print("\n## pgbench -S (median of %d runs of %ds)\n" % (args.reps, args.duration))
        print("| mode | clients | direct tps | relay tps | hoop tps | hoop/relay | hoop/direct | "
              "relay lat ms | hoop lat ms | relay CPU us/txn | hoop CPU us/txn |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for mode in modes:
            for clients in client_counts:
                r = {n: results[(mode, clients, n)] for n in names}
                tps = {n: med([x[0] for x in v]) for n, v in r.items()}
                lat = {n: med([x[1] for x in v]) for n, v in r.items()}
                cpu = {n: med([x[2] for x in v]) for n, v in r.items()}
                print(f"| {mode} | {clients} | {tps['direct']:.0f} | {tps['relay']:.0f} | {tps['hoop']:.0f} | "
                      f"{tps['hoop'] / tps['relay']:.3f} | {tps['hoop'] / tps['direct']:.3f} | "
                      f"{lat['relay']:.3f} | {lat['hoop']:.3f} | {cpu['relay']:.1f} | {cpu['hoop']:.1f} |")
                if "hoop+pol" in tps:
                    print(f"|   hoop+pol | {clients} | | | {tps['hoop+pol']:.0f} | {tps['hoop+pol'] / tps['relay']:.3f} | "
                          f"{tps['hoop+pol'] / tps['direct']:.3f} | | {lat['hoop+pol']:.3f} | | {cpu['hoop+pol']:.1f} |")
        print("\n## large result: %s rows read by psql (median of %d)\n" % (f"{args.rows:,}", args.reps))
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
