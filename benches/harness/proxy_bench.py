"""What the benchmark harnesses share: free ports, waiting for a listener,
a process's CPU time and peak memory from /proc, and starting the bare relay
and hoop's example proxy (optionally a second one with a policy) in front of
one upstream, so pg_bench.py and mysql_bench.py measure the same way."""

import os
import socket
import subprocess
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def cpu_seconds(pid):
    """User plus system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_proxies(target_dir, example, upstream_port, hoop_env, policy, started):
    """Starts the bare relay and hoop's `example` proxy in front of
    `upstream_port`, plus one with `--policy` when `policy` is not None
    ("{}" means the default, empty policy). Appends each process to
    `started` and returns the targets to measure: (name, port, pid or None)."""
    def spawn(name, command, env=None):
        port = free_port()
        proc = subprocess.Popen(command(port), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append((name, proc))
        return name, port, proc

    proxy = f"{target_dir}/release/examples/{example}"
    procs = [
        spawn("relay", lambda port: [f"{target_dir}/release/bare_relay", f"127.0.0.1:{port}",
                                     f"127.0.0.1:{upstream_port}"]),
        spawn("hoop", lambda port: [proxy, "--listen", f"127.0.0.1:{port}"], hoop_env),
    ]
    if policy is not None:
        if policy == "{}":
            policy = os.path.join(tempfile.mkdtemp(prefix="hoop-policy-"), "policy.json")
            with open(policy, "w") as f:
                f.write("{}")
        procs.append(spawn("hoop+pol", lambda port: [proxy, "--listen", f"127.0.0.1:{port}",
                                                     "--policy", policy], hoop_env))
    for _, port, _ in procs:
        wait_port(port)
    return [("direct", upstream_port, None)] + [(name, port, proc.pid) for name, port, proc in procs]
