#!/usr/bin/env python3
"""Seeds fuzz/corpus/postgres_decode/ from the PostgreSQL captures.

    python3 fuzz/seed_postgres.py [CAPTURES_DIR]

For every TCP stream of every capture in CAPTURES_DIR (default
testdata/captures/postgres in the repository), tshark dumps the
raw bytes each side sent; each direction becomes one seed in the input format
of fuzz_targets/postgres_decode.rs:

    byte 0      bit 0: 0 = client bytes (FrontendDecoder), 1 = server bytes
                (BackendDecoder); bits 1-2: how many SSLRequest/GSSENCRequest
                answers the BackendDecoder is told to expect
    bytes 1-2   split point (little endian, taken modulo the data length + 1):
                the target feeds the data in two pieces cut there
    bytes 3..   the stream's bytes

Seeds are named by content hash, so running this again changes nothing.
"""

import hashlib
import os
import re
import struct
import subprocess
import sys

SERVER_PORT = 5432
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
# Large streams are cut: libFuzzer mutates small inputs far faster, and the
# first 64 KiB of a stream hold every kind of message it has.
MAX_SEED_LEN = 64 * 1024


def run_tshark(*args):
    result = subprocess.run(
        ["tshark", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"seed_postgres: tshark {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def stream_ids(capture):
    out = run_tshark("-r", capture, "-T", "fields", "-e", "tcp.stream")
    return sorted({int(line) for line in out.split() if line.strip()})


def follow(capture, stream):
    """Returns (client_bytes, server_bytes) of one TCP stream."""
    out = run_tshark("-r", capture, "-q", "-z", f"follow,tcp,raw,{stream}")
    node0_is_server = False
    sent = {0: bytearray(), 1: bytearray()}
    in_body = False
    for line in out.splitlines():
        match = re.match(r"^Node 0: .*:(\d+)$", line)
        if match:
            node0_is_server = int(match.group(1)) == SERVER_PORT
            continue
        if line.startswith("Node 1:"):
            in_body = True
            continue
        if not in_body or line.startswith("===="):
            continue
        node = 1 if line.startswith("\t") else 0
        sent[node] += bytes.fromhex(line.strip())
    if node0_is_server:
        return bytes(sent[1]), bytes(sent[0])
    return bytes(sent[0]), bytes(sent[1])


def negotiation_requests(client):
    """Counts the SSLRequest/GSSENCRequest packets that open a client stream."""
    count = 0
    while len(client) >= 8 and count < 3:
        length, code = struct.unpack(">ii", client[:8])
        if length != 8 or code not in (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE):
            break
        count += 1
        client = client[8:]
    return count


def seed(flags, data, split):
    data = data[:MAX_SEED_LEN]
    return bytes([flags]) + struct.pack("<H", split % 65536) + data


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    captures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "testdata", "captures", "postgres")
    if not os.path.isdir(captures):
        sys.exit(f"seed_postgres: {captures} is absent; the captures live in testdata/captures")
    out_dir = os.path.join(root, "fuzz", "corpus", "postgres_decode")
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for name in sorted(os.listdir(captures)):
        if not name.endswith((".pcap", ".pcapng")):
            continue
        path = os.path.join(captures, name)
        for stream in stream_ids(path):
            client, server = follow(path, stream)
            negotiations = negotiation_requests(client)
            seeds = []
            if client:
                seeds.append(seed(0, client, len(client) // 2))
                seeds.append(seed(0, client, 0))
            if server:
                flags = 1 | (negotiations << 1)
                seeds.append(seed(flags, server, len(server) // 2))
                seeds.append(seed(flags, server, 0))
            for data in seeds:
                digest = hashlib.sha1(data).hexdigest()
                with open(os.path.join(out_dir, digest), "wb") as f:
                    f.write(data)
                written += 1
    print(f"seed_postgres: {written} seeds from {captures} in {os.path.relpath(out_dir, root)}")


if __name__ == "__main__":
    main()
