#!/usr/bin/env python3
"""Seeds the relay targets (postgres_relay, mysql_relay) from the captures.

    python3 fuzz/seed_relay.py

The relay codecs start where a session's handshake ends, so each TCP stream
of testdata/captures/postgres and testdata/captures/mysql is cut there:
PostgreSQL after the client's SSLRequest/GSSENCRequest answers and startup
message (a stream whose server accepted TLS is skipped: the rest is
ciphertext); MySQL from the client's first command (its first packet with
sequence id 0), with the server's bytes before it dropped. What is left, both
directions in capture order, becomes records `Byte1 header (bit 7 = server,
bits 0-6 = length) + bytes` (fuzz_targets/relay_common.rs) behind each
target's option bytes: postgres_relay under the default and the guarded
policy; mysql_relay with the capability flags 0 and DEPRECATE_EOF, under
each policy.

Seeds are named by content hash, so running this again changes nothing.
"""

import hashlib
import os
import re
import struct
import subprocess
import sys

MAX_SEED_LEN = 64 * 1024
NEGOTIATION_CODES = (80877103, 80877104)  # SSLRequest, GSSENCRequest


def run_tshark(*args):
    result = subprocess.run(["tshark", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"seed_relay: tshark {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def stream_ids(capture):
    out = run_tshark("-r", capture, "-T", "fields", "-e", "tcp.stream")
    return sorted({int(line) for line in out.split() if line.strip()})


def chunks(capture, stream, server_port):
    """(from_server, bytes) for each chunk of one TCP stream, in order."""
    out = run_tshark("-r", capture, "-q", "-z", f"follow,tcp,raw,{stream}")
    node0_is_server = False
    in_body = False
    for line in out.splitlines():
        match = re.match(r"^Node 0: .*:(\d+)$", line)
        if match:
            node0_is_server = int(match.group(1)) == server_port
            continue
        if line.startswith("Node 1:"):
            in_body = True
            continue
        if not in_body or line.startswith("====") or not line.strip():
            continue
        yield (line.startswith("\t") != node0_is_server), bytes.fromhex(line.strip())


def records(stream_chunks, client_skip, server_skip):
    """The stream without its first client_skip/server_skip bytes, as records."""
    out = bytearray()
    for from_server, data in stream_chunks:
        if from_server:
            cut, server_skip = min(server_skip, len(data)), server_skip - min(server_skip, len(data))
        else:
            cut, client_skip = min(client_skip, len(data)), client_skip - min(client_skip, len(data))
        data = data[cut:]
        for start in range(0, len(data), 0x7F):
            piece = data[start : start + 0x7F]
            out.append((0x80 if from_server else 0) | len(piece))
            out += piece
            if len(out) > MAX_SEED_LEN:
                return bytes(out)
    return bytes(out)


def postgres_skips(stream_chunks):
    """(client, server) handshake bytes to drop, or None for a TLS stream."""
    client = b"".join(d for s, d in stream_chunks if not s)
    server = b"".join(d for s, d in stream_chunks if s)
    at = negotiations = 0
    while len(client) >= at + 8:
        length, code = struct.unpack(">ii", client[at : at + 8])
        if length != 8 or code not in NEGOTIATION_CODES:
            break
        if server[negotiations : negotiations + 1] == b"S":
            return None
        at += 8
        negotiations += 1
    if len(client) < at + 4:
        return None
    (startup_len,) = struct.unpack(">i", client[at : at + 4])
    return at + max(startup_len, 0), negotiations


def mysql_skips(stream_chunks):
    """(client, server) bytes before the client's first command."""
    client = b"".join(d for s, d in stream_chunks if not s)
    at = 0
    while len(client) >= at + 4:
        length = int.from_bytes(client[at : at + 3], "little")
        if client[at + 3] == 0 and at > 0:
            break
        at += 4 + length
    else:
        return None
    # The server's bytes sent before the chunk that carries the command.
    seen = server = 0
    for from_server, data in stream_chunks:
        if from_server:
            server += len(data)
        else:
            seen += len(data)
            if seen > at:
                break
    return at, server


def write(out_dir, data):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    captures = os.path.join(root, "testdata", "captures")
    corpus = os.path.join(root, "fuzz", "corpus")
    written = 0
    for target, directory, port, skips, prefixes in [
        ("postgres_relay", "postgres", 5432, postgres_skips, [b"\x00", b"\x01"]),
        ("mysql_relay", "mysql", 3306, mysql_skips, [b"\x00\x00", b"\x01\x00", b"\x81\x00"]),
    ]:
        folder = os.path.join(captures, directory)
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".pcap", ".pcapng")):
                continue
            path = os.path.join(folder, name)
            for stream in stream_ids(path):
                stream_chunks = list(chunks(path, stream, port))
                cut = skips(stream_chunks)
                if cut is None:
                    continue
                body = records(stream_chunks, *cut)
                if not body:
                    continue
                for prefix in prefixes:
                    write(os.path.join(corpus, target), prefix + body)
                    written += 1
    print(f"seed_relay: {written} seeds in {os.path.relpath(corpus, root)}")


if __name__ == "__main__":
    main()
