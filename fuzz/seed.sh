#!/usr/bin/env bash
# Adds the seeds of the fuzz targets to their corpora (fuzz/corpus/, kept minimized in git)
# from the public captures in testdata/captures. `.ci/run` runs it before
# fuzzing; run it yourself before `cargo fuzz run`. Needs tshark and python3.
# A target seeded from captures gets one line below.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v tshark >/dev/null || { echo "fuzz/seed.sh: tshark is not installed (apt-get install tshark)" >&2; exit 1; }

python3 fuzz/seed_postgres.py
python3 fuzz/seed_mysql.py
python3 fuzz/seed_relay.py
python3 fuzz/seed_content.py
python3 fuzz/seed_link.py
