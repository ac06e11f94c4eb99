#!/usr/bin/env python3
"""Seeds fuzz/corpus/content_masking/ (no capture holds HTTP bodies or
documents): JSON bodies with values spelled plainly and with escapes, nested
arrays, field-rule paths, and a text stream cut at 0xFF bytes with a value and
a private key straddling the cuts. Byte 0 picks the policy (see the target).
"""

import hashlib
import os

SEEDS = [
    b'{"user": {"email": "ada@example.com", "ssn": "078-05-1120", "id": 7}}',
    b'{"note": "ada\\u0040example.com", "k\\u0065y": ["\\ud83d\\ude00", 4111111111111111]}',
    b'[[["grace@example.org", {"card": "4111 1111 1111 1111"}]], {"public": {"email": "x@y.io"}}]',
    b'{"notes": "call 555-234-5678", "$x": [1, 2.5e3, true, null], "a": {"ssn": 12}}',
    b"mail ada@exa\xffmple.com\nnext line 4111 1111\xff 1111 1111\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\xffowIBAAK\n-----END RSA PRIVATE KEY-----\n",
]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "fuzz", "corpus", "content_masking")
    os.makedirs(out, exist_ok=True)
    for seed in SEEDS:
        for flags in (b"\x00", b"\x01"):
            data = flags + seed
            with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
    print(f"seed_content: {2 * len(SEEDS)} seeds in fuzz/corpus/content_masking")


if __name__ == "__main__":
    main()
