#!/usr/bin/env python3
"""Seeds the MySQL fuzz targets from the MySQL captures.

    python3 fuzz/seed_mysql.py [CAPTURES_DIR]

For every TCP stream of every capture in CAPTURES_DIR (default
../shared/captures/mysql), tshark dumps the chunks each side sent, in capture
order. They become seeds in the formats of:

- fuzz_targets/mysql_session.rs: records `Byte1 header (bit 7 = server,
  bits 0-6 = length) + bytes`, the two directions interleaved as captured;
- fuzz_targets/mysql_server.rs: `state 0 (greeting), capability flags, the
  server's bytes`;
- fuzz_targets/mysql_client.rs: `state 0 (after a greeting), capability
  flags, the client's bytes`.

Seeds are named by content hash, so running this again changes nothing.
"""

import hashlib
import os
import re
import subprocess
import sys

SERVER_PORT = 3306
MAX_SEED_LEN = 64 * 1024
ALL_CAPABILITY_FLAGS = 0x7F


def run_tshark(*args):
    result = subprocess.run(["tshark", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"seed_mysql: tshark {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def stream_ids(capture):
    out = run_tshark("-r", capture, "-T", "fields", "-e", "tcp.stream")
    return sorted({int(line) for line in out.split() if line.strip()})


def chunks(capture, stream):
    """Yields (from_server, bytes) for each chunk of one TCP stream, in order."""
    out = run_tshark("-r", capture, "-q", "-z", f"follow,tcp,raw,{stream}")
    node0_is_server = False
    in_body = False
    for line in out.splitlines():
        match = re.match(r"^Node 0: .*:(\d+)$", line)
        if match:
            node0_is_server = int(match.group(1)) == SERVER_PORT
            continue
        if line.startswith("Node 1:"):
            in_body = True
            continue
        if not in_body or line.startswith("====") or not line.strip():
            continue
        node1 = line.startswith("\t")
        yield (node1 != node0_is_server), bytes.fromhex(line.strip())


def session_seed(stream_chunks):
    out = bytearray()
    for from_server, data in stream_chunks:
        for start in range(0, len(data), 0x7F):
            piece = data[start : start + 0x7F]
            out.append((0x80 if from_server else 0) | len(piece))
            out += piece
            if len(out) > MAX_SEED_LEN:
                return bytes(out)
    return bytes(out)


def write(out_dir, data):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    captures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "captures", "mysql")
    if not os.path.isdir(captures):
        sys.exit(f"seed_mysql: {captures} is absent; the captures live in ../shared beside the project")
    corpus = os.path.join(root, "fuzz", "corpus")
    written = 0
    for name in sorted(os.listdir(captures)):
        if not name.endswith((".pcap", ".pcapng")):
            continue
        path = os.path.join(captures, name)
        for stream in stream_ids(path):
            stream_chunks = list(chunks(path, stream))
            write(os.path.join(corpus, "mysql_session"), session_seed(stream_chunks))
            client = b"".join(d for s, d in stream_chunks if not s)[:MAX_SEED_LEN]
            server = b"".join(d for s, d in stream_chunks if s)[:MAX_SEED_LEN]
            write(os.path.join(corpus, "mysql_server"), bytes([0, ALL_CAPABILITY_FLAGS]) + server)
            write(os.path.join(corpus, "mysql_client"), bytes([0, ALL_CAPABILITY_FLAGS]) + client)
            written += 3
    print(f"seed_mysql: {written} seeds from {captures} in {os.path.relpath(corpus, root)}")


if __name__ == "__main__":
    main()
