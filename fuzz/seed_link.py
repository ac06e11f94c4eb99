#!/usr/bin/env python3
"""Writes the seed corpus of the `link_frame` fuzz target (fuzz/corpus/link_frame/).

No capture holds the agent link (it is hoop's own protocol), so the seeds are
built here, frame by frame, as `hoop_proxy::link::frame` encodes them:

    length: u32 BE | kind: u8 | stream: u32 BE | payload (length bytes)

Each seed is the target's layout: a 2-byte little-endian split point, then
the stream. They cover a link's handshake and control traffic (hello,
welcome, refused, ping/pong, targets, status, cancel, events and their
ack), sessions on streams 1-3 (open, data, window, close), a peer that
exceeds its flow-control window, a kind this version does not know, a
truncated frame and a header announcing more than MAX_PAYLOAD.
"""

import json
import os
import struct

HELLO, WELCOME, REFUSED, PING, PONG, TARGETS, STATUS, CANCEL = 1, 2, 3, 4, 5, 6, 7, 8
OPEN, DATA, CLOSE, WINDOW, EVENTS, EVENTS_ACK = 16, 17, 18, 19, 20, 21
MAX_PAYLOAD = 1 << 20
FLOW_WINDOW = 256 * 1024


def frame(kind, stream, payload=b""):
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload).encode()
    return struct.pack(">IBI", len(payload), kind, stream) + payload


def seed(split, *frames):
    return struct.pack("<H", split) + b"".join(frames)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "link_frame")
    os.makedirs(root, exist_ok=True)
    hello = {"name": "edge", "secret": "c2VjcmV0", "version": "0.1.0",
             "hostname": "db1", "platform": "linux/x86_64"}
    cancel = struct.pack(">IIII", 16, 80877102, 4242, 0x5EC2E7)
    seeds = {
        "handshake": seed(3,
                          frame(HELLO, 0, hello),
                          frame(WELCOME, 0, {"agent_id": "a1", "heartbeat_ms": 2000}),
                          frame(TARGETS, 0, {"targets": [{"connection_id": "c1", "host": "127.0.0.1", "port": 5432}]}),
                          frame(STATUS, 0, {"reachable": {"c1": True}})),
        "refused": seed(0, frame(HELLO, 0, hello), frame(REFUSED, 0, b"invalid agent key")),
        "heartbeat": seed(11, frame(PING, 0, b"12345678"), frame(PONG, 0, b"12345678"), frame(CANCEL, 0, cancel)),
        "session": seed(20,
                        frame(OPEN, 1, {"session_id": "s1", "connection": "pg", "mode": "connect"}),
                        frame(DATA, 1, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
                        frame(WINDOW, 1, struct.pack(">I", 8)),
                        frame(DATA, 2, b"Q\x00\x00\x00\x0dselect 1\x00"),
                        frame(EVENTS, 1, {"session_id": "s1", "batch": 1, "events": []}),
                        frame(EVENTS_ACK, 0, {"batches": [{"session_id": "s1", "batch": 1}]}),
                        frame(CLOSE, 1, b"done"),
                        frame(DATA, 1, b"after close")),
        "over_window": seed(9,
                            frame(DATA, 3, b"x" * (FLOW_WINDOW // 2)),
                            frame(DATA, 3, b"y" * (FLOW_WINDOW // 2)),
                            frame(DATA, 3, b"z"),
                            frame(DATA, 2, b"still open")),
        "window_overflow": seed(5, frame(WINDOW, 2, b"\xff\xff\xff\xff"), frame(WINDOW, 2, b"\x00\x01"),
                                frame(DATA, 2, b"ok")),
        "unknown_kind": seed(4, frame(200, 7, b"from a newer version"), frame(DATA, 1, b"a")),
        "truncated": seed(6, frame(DATA, 1, b"whole"), frame(DATA, 2, b"cut short")[:12]),
        "too_large": seed(2, frame(PING, 0, b"p"), struct.pack(">IBI", MAX_PAYLOAD + 1, DATA, 1)),
    }
    for name, data in seeds.items():
        with open(os.path.join(root, name), "wb") as out:
            out.write(data)
    print(f"fuzz/seed_link.py: {len(seeds)} seeds in {root}")


if __name__ == "__main__":
    main()
