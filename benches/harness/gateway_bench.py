#!/usr/bin/env python3
"""Sessions through the gateway: bare relay vs. the gateway's native
listeners vs. `hoop connect`, in one run.

Uses the machine's PostgreSQL (127.0.0.1:5432, trust, user postgres) and
MariaDB (127.0.0.1:3306, root, no password). Starts, all release builds:

  - the bare relay (benches/src/bin/bare_relay.rs: copy_bidirectional, parses
    nothing) in front of each server, and two of them chained (the floor for
    `hoop connect`, which is two hops by design: a local port, then the
    gateway);
  - hoop's standalone proxy example (examples/pg_proxy.rs, mysql_proxy.rs)
    with the same policy the gateway derives from `redact_enabled: true`,
    and no recording: the gateway path minus audit and access checks;
  - `hoop up` (gateway + embedded agent, served in place: the driver runs
    with audit recording and the default masking policy, i.e.
    `redact_enabled: true` with the default entity set);
  - `hoop connect` for each connection, twice: as it runs by default on
    the gateway's host (each client's socket handed to the gateway), and
    with --tunnel (a local port tunnelled to the gateway over an HTTP
    upgrade, as to a gateway on another host).

Then interleaves repetitions of pgbench -S (-M simple) and sysbench
oltp_point_select through each path and prints median tps, the ratio to the
relay, and the proxies' CPU time per transaction (utime+stime of the
processes on the path, from /proc).

Paths:
  pg relay      pgbench -> bare_relay -> PostgreSQL
  pg relay x2   pgbench -> bare_relay -> bare_relay -> PostgreSQL
  pg policy     pgbench -> pg_proxy --policy (no audit) -> PostgreSQL
  pg native     pgbench -> gateway listener: checks, driver, policy, audit -> PostgreSQL
  pg connect    pgbench -> gateway (socket handed over by hoop connect): driver, policy, audit -> PostgreSQL
  pg tunnel     pgbench -> hoop connect --tunnel -> gateway (upgrade): driver, policy, audit -> PostgreSQL
  pg agent      pgbench -> gateway listener -> link (TCP) -> a separate hoop-agent: driver,
                policy, audit -> PostgreSQL (how an agent in another network serves)
  my ...        the same with sysbench and MariaDB

"pg native" against "pg policy" is what recording (and the session's
checks, once per connection) costs; "pg tunnel" against "pg relay x2" is
the tunnel against the same number of hops.

sysbench reaches the MySQL listener with LIBMYSQL_PLUGINS=mysql_clear_password:
libmariadb loads that plugin lazily without a lock, and threads connecting at
once can fail with "already loaded"; preloading it avoids the race.

Usage (from the workspace root, on a quiet machine):
    python3 benches/harness/gateway_bench.py [--duration 10] [--reps 3] [--clients 1,8]
"""

import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from proxy_bench import cpu_seconds, free_port, wait_port

# The policy the gateway derives from `redact_enabled: true` with no types.
POLICY = {"masking": {}, "guardrails": {"input": [], "output": []}}

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TOKEN = "gateway-bench-admin-token"
PG_DB = "hoop_gateway_bench"
MY_DB = "hoop_gateway_bench"
MY_USER, MY_PASS = "hoop_gw_bench", "hoop-gw-bench-pw"

started = []
data_dir = None
policy_dir = None




def spawn(name, args, env=None):
    p = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, text=True)
    started.append((name, p))
    return p


def cleanup(*_):
    for _, p in started:
        if p.poll() is None:
            p.terminate()
    for _, p in started:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    for path in (data_dir, policy_dir):
        if path:
            subprocess.run(["rm", "-rf", path])



def api(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def pgbench(port, user, password, clients, duration):
    env = {**os.environ, "PGPASSWORD": password}
    out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-S", "-M", "simple",
                          "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(duration), "-n", PG_DB],
                         env=env, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    raise SystemExit(out)


def sysbench(port, clients, duration, user=MY_USER, password=MY_PASS):
    env = {**os.environ, "LIBMYSQL_PLUGINS": "mysql_clear_password"}
    out = subprocess.run(["sysbench", "oltp_point_select", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
                          f"--mysql-user={user}", f"--mysql-password={password}", f"--mysql-db={MY_DB}",
                          "--mysql-ssl=off", "--tables=1", "--table-size=10000", f"--threads={clients}",
                          f"--time={duration}", "run"], env=env, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "transactions:" in line:
            return float(line.split("(")[1].split()[0])
    raise SystemExit(out)


def prepare_databases(scale):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {PG_DB}",
                    "-c", f"CREATE DATABASE {PG_DB}"], check=True, capture_output=True)
    subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-i", "-q", "-s", str(scale), PG_DB],
                   check=True, capture_output=True)
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e",
                    f"DROP DATABASE IF EXISTS {MY_DB}; CREATE DATABASE {MY_DB}; "
                    f"DROP USER IF EXISTS '{MY_USER}'@'%'; CREATE USER '{MY_USER}'@'%' IDENTIFIED BY '{MY_PASS}'; "
                    f"GRANT ALL ON {MY_DB}.* TO '{MY_USER}'@'%';"], check=True, capture_output=True)
    subprocess.run(["sysbench", "oltp_point_select", "--mysql-host=127.0.0.1", "--mysql-port=3306",
                    f"--mysql-user={MY_USER}", f"--mysql-password={MY_PASS}", f"--mysql-db={MY_DB}",
                    "--mysql-ssl=off", "--tables=1", "--table-size=10000", "prepare"],
                   check=True, capture_output=True)


def main():
    global data_dir, policy_dir
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--paths", default="",
                        help="comma-separated path names to run (e.g. 'my relay,my connect'); the relay of "
                             "each protocol always runs, as the reference")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, lambda *_: (cleanup(), sys.exit(130)))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "hoop", "-p", "hoop-agent", "-p", "hoop-benches",
                        "--bin", "hoop", "--bin", "hoop-agent", "--bin", "bare_relay"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "hoop-examples",
                        "--example", "pg_proxy", "--example", "mysql_proxy"], cwd=ROOT, check=True)
    hoop = os.path.join(TARGET, "release", "hoop")
    relay = os.path.join(TARGET, "release", "bare_relay")
    example = lambda name: os.path.join(TARGET, "release", "examples", name)
    try:
        prepare_databases(args.scale)
        policy_dir = tempfile.mkdtemp(prefix="hoop-gateway-bench-policy-")
        policy = os.path.join(policy_dir, "policy.json")
        with open(policy, "w") as f:
            json.dump(POLICY, f)
        ports = {}
        for db, upstream in [("pg", 5432), ("my", 3306)]:
            ports[db + " relay"], middle, ports[db + " relay x2"] = free_port(), free_port(), free_port()
            spawn(db + " relay", [relay, f"127.0.0.1:{ports[db + ' relay']}", f"127.0.0.1:{upstream}"])
            spawn(db + " relay x2", [relay, f"127.0.0.1:{middle}", f"127.0.0.1:{upstream}"])
            spawn(db + " relay x2", [relay, f"127.0.0.1:{ports[db + ' relay x2']}", f"127.0.0.1:{middle}"])
        for db, name, upstream, user, password, database in [
                ("pg", "pg_proxy", 5432, "postgres", "x", PG_DB),
                ("my", "mysql_proxy", 3306, MY_USER, MY_PASS, MY_DB)]:
            ports[db + " policy"] = free_port()
            spawn(db + " policy", [example(name), "--listen", f"127.0.0.1:{ports[db + ' policy']}",
                                   "--policy", policy],
                  env={"HOST": "127.0.0.1", "PORT": str(upstream), "USER": user, "PASS": password,
                       "DB": database, "SSLMODE": "disable", "RUST_LOG": "warn"})
        data_dir = tempfile.mkdtemp(prefix="hoop-gateway-bench-")
        api_port, agent_port = free_port(), free_port()
        ports["pg native"], ports["my native"] = free_port(), free_port()
        up = spawn("hoop up", [hoop, "up", "--data-dir", data_dir, "--api-listen", f"127.0.0.1:{api_port}",
                                "--agent-listen", f"127.0.0.1:{agent_port}",
                                "--postgres-listen", f"127.0.0.1:{ports['pg native']}",
                                "--mysql-listen", f"127.0.0.1:{ports['my native']}"],
                   env={"HOOP_ADMIN_TOKEN": TOKEN, "RUST_LOG": "warn"})
        wait_port(api_port)
        # A separately started agent, whose sessions cross the link.
        agent_key = api(api_port, "POST", "/api/agents", {"name": "bench-agent"})["token"]
        agent = spawn("agent", [os.path.join(TARGET, "release", "hoop-agent")],
                      env={"HOOP_KEY": agent_key, "RUST_LOG": "warn"})
        for name, subtype, port, user, password, db, agent_name in [
                ("pgbench", "postgres", 5432, "postgres", "x", PG_DB, "default"),
                ("pgbench-agent", "postgres", 5432, "postgres", "x", PG_DB, "bench-agent"),
                ("sysbench", "mysql", 3306, MY_USER, MY_PASS, MY_DB, "default"),
                ("sysbench-agent", "mysql", 3306, MY_USER, MY_PASS, MY_DB, "bench-agent")]:
            api(api_port, "POST", "/api/connections", {
                "name": name, "type": "database", "subtype": subtype, "agent_id": agent_name,
                "redact_enabled": True,
                # Plain text to the server, as the relays and the proxy examples.
                "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(str(port)),
                           "envvar:USER": b64(user), "envvar:PASS": b64(password), "envvar:DB": b64(db),
                           "envvar:SSLMODE": b64("disable")}})
        deadline = time.time() + 30
        while any(c["status"] != "online" for c in api(api_port, "GET", "/api/connections")):
            if time.time() > deadline:
                raise SystemExit("connections never came online")
            time.sleep(0.2)
        env = {"HOOP_API_URL": f"http://127.0.0.1:{api_port}", "HOOP_TOKEN": TOKEN}
        for db, name in [("pg", "pgbench"), ("my", "sysbench")]:
            ports[db + " connect"], ports[db + " tunnel"] = free_port(), free_port()
            spawn(db + " connect", [hoop, "connect", name, "-p", str(ports[db + " connect"])], env=env)
            spawn(db + " tunnel", [hoop, "connect", name, "--tunnel", "-p", str(ports[db + " tunnel"])],
                  env=env)
        for port in ports.values():
            wait_port(port)
        procs = lambda *names: [p for n, p in started if n in names]
        paths = [
            ("pg relay", lambda c: pgbench(ports["pg relay"], "postgres", "x", c, args.duration),
             procs("pg relay")),
            ("pg relay x2", lambda c: pgbench(ports["pg relay x2"], "postgres", "x", c, args.duration),
             procs("pg relay x2")),
            ("pg policy", lambda c: pgbench(ports["pg policy"], "postgres", "x", c, args.duration),
             procs("pg policy")),
            ("pg native", lambda c: pgbench(ports["pg native"], "pgbench", TOKEN, c, args.duration), [up]),
            ("pg connect", lambda c: pgbench(ports["pg connect"], "noop", "", c, args.duration),
             [up] + procs("pg connect")),
            ("pg tunnel", lambda c: pgbench(ports["pg tunnel"], "noop", "", c, args.duration),
             [up] + procs("pg tunnel")),
            ("pg agent", lambda c: pgbench(ports["pg native"], "pgbench-agent", TOKEN, c, args.duration),
             [up, agent]),
            ("my relay", lambda c: sysbench(ports["my relay"], c, args.duration), procs("my relay")),
            ("my relay x2", lambda c: sysbench(ports["my relay x2"], c, args.duration), procs("my relay x2")),
            ("my policy", lambda c: sysbench(ports["my policy"], c, args.duration), procs("my policy")),
            ("my native", lambda c: sysbench(ports["my native"], c, args.duration, "sysbench", TOKEN), [up]),
            ("my connect", lambda c: sysbench(ports["my connect"], c, args.duration),
             [up] + procs("my connect")),
            ("my tunnel", lambda c: sysbench(ports["my tunnel"], c, args.duration),
             [up] + procs("my tunnel")),
            ("my agent", lambda c: sysbench(ports["my native"], c, args.duration, "sysbench-agent", TOKEN),
             [up, agent]),
        ]
        if args.paths:
            wanted = {p.strip() for p in args.paths.split(",")}
            paths = [p for p in paths if p[0] in wanted or p[0].endswith(" relay")
                     and any(w.startswith(p[0][:2]) for w in wanted)]
        results = {}
        split = {}
        for rep in range(args.reps):
            for clients in [int(c) for c in args.clients.split(",")]:
                for name, run, procs in paths:
                    before = [cpu_seconds(p.pid) for p in procs]
                    tps = run(clients)
                    each = [cpu_seconds(p.pid) - b for p, b in zip(procs, before)]
                    transactions = max(tps * args.duration, 1)
                    results.setdefault((name, clients), []).append((tps, sum(each) / transactions))
                    split.setdefault((name, clients), []).append([c / transactions for c in each])
                    print(f"rep {rep + 1} {name:10} c={clients}: {tps:9.0f} tps", flush=True)
        print()
        print(f"{'path':12} {'clients':>7} {'tps (median)':>13} {'vs relay':>9} {'proxy CPU us/tx':>16}")
        for (name, clients), runs in sorted(results.items(), key=lambda kv: (kv[0][0][:2], kv[0][1], kv[0][0])):
            tps = statistics.median(t for t, _ in runs)
            relay_tps = statistics.median(t for t, _ in results[(name[:2] + " relay", clients)])
            cpu = statistics.median(c for _, c in runs) * 1e6
            parts = " + ".join(f"{statistics.median(run[i] for run in split[(name, clients)]) * 1e6:.1f}"
                               for i in range(len(split[(name, clients)][0])))
            print(f"{name:12} {clients:7} {tps:13.0f} {tps / relay_tps:9.2f} {cpu:16.1f}  ({parts})")
        sessions = api(api_port, "GET", "/api/sessions?status=done")
        print(f"\nrecorded sessions (done): {len(sessions)}")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
