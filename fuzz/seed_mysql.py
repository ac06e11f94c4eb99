#!/usr/bin/env python3
"""Seeds the MySQL fuzz targets from the MySQL captures.

    python3 fuzz/seed_mysql.py [CAPTURES_DIR]

For every TCP stream of every capture in CAPTURES_DIR (default
testdata/captures/mysql), tshark dumps the chunks each side sent, in capture
order. They become seeds in the formats of:

- fuzz_targets/mysql_session.rs: records `Byte1 header (bit 7 = server,
  bits 0-6 = length) + bytes`, the two directions interleaved as captured;
- fuzz_targets/mysql_server.rs: `state 0 (greeting), capability flags, the
  server's bytes`;
- fuzz_targets/mysql_client.rs: `state 0 (after a greeting), capability
  flags, the client's bytes`.

It also seeds MariaDB's metadata cache (MARIADB_CLIENT_CACHE_METADATA), which
no public capture has, from hoop-wire/testdata/mariadb_cache_metadata.bin (a
real MariaDB 10.11 command phase: a prepare, two executions answered without
column definitions): behind a synthetic MariaDB greeting and login for
mysql_session, and as a metadata-less result of the canned statement for
mysql_server.

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


def packet(seq, payload):
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def mariadb_cache_metadata_seeds(root):
    """(mysql_session seed, mysql_server seed) under MariaDB's metadata cache."""
    with open(os.path.join(root, "hoop-wire", "testdata", "mariadb_cache_metadata.bin"), "rb") as f:
        recorded = f.read()
    # PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, DEPRECATE_EOF, CONNECT_WITH_DB,
    # MULTI_STATEMENTS, MULTI_RESULTS, PLUGIN_AUTH_LENENC_CLIENT_DATA; no
    # CLIENT_MYSQL (bit 0), so the extended capabilities count.
    caps = (1 << 9) | (1 << 15) | (1 << 19) | (1 << 24) | (1 << 3) | (1 << 16) | (1 << 17) | (1 << 21)
    extended = 1 << 4  # MARIADB_CLIENT_CACHE_METADATA
    plugin = b"mysql_native_password\0"
    greeting = (b"\x0a5.5.5-10.11.19-MariaDB\0" + (7).to_bytes(4, "little") + b"abcdefgh\0"
                + (caps & 0xFFFF).to_bytes(2, "little") + bytes([45]) + (2).to_bytes(2, "little")
                + (caps >> 16).to_bytes(2, "little") + bytes([21]) + bytes(6)
                + extended.to_bytes(4, "little") + b"0123456789ab\0" + plugin)
    response = (caps.to_bytes(4, "little") + (1 << 24).to_bytes(4, "little") + bytes([45]) + bytes(19)
                + extended.to_bytes(4, "little") + b"app\0" + bytes([20]) + bytes(20) + b"db\0" + plugin)
    ok = bytes([0, 0, 0, 2, 0, 0, 0])
    stream = [(True, packet(0, greeting)), (False, packet(1, response)), (True, packet(2, ok))]
    while recorded:
        direction, length = recorded[0], int.from_bytes(recorded[1:5], "little")
        stream.append((direction == ord("S"), recorded[5 : 5 + length]))
        recorded = recorded[5 + length :]
    # mysql_server state 4 (the canned statement's execution pending), flags
    # DEPRECATE_EOF and MARIADB_CACHE_METADATA: its 16 columns skipped, then
    # the end of the result.
    server = bytes([4, 0b1001]) + packet(1, bytes([16, 0])) + packet(2, b"\xfe\0\0\x02\0\0\0")
    return session_seed(stream), server


def write(out_dir, data):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    captures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "testdata", "captures", "mysql")
    if not os.path.isdir(captures):
        sys.exit(f"seed_mysql: {captures} is absent; the captures live in testdata/captures")
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
    session, server = mariadb_cache_metadata_seeds(root)
    write(os.path.join(corpus, "mysql_session"), session)
    write(os.path.join(corpus, "mysql_server"), server)
    written += 2
    print(f"seed_mysql: {written} seeds from {captures} in {os.path.relpath(corpus, root)}")


if __name__ == "__main__":
    main()
