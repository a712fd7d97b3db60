#!/bin/bash
# Quick start, part one: installs everything citycmd needs, builds it, and
# runs the server on the bundled demo city with its simulators.
#   bash tools/demo.sh [extra citycmd flags, e.g. --http 0.0.0.0:8443 --tls-cert C --tls-key K]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
make -s all
echo "citycmd: demo on http://127.0.0.1:8080/ (sign in as duty, password citycmd-demo; Ctrl-C to stop; state in build/demo-state)" >&2
exec build/citycmd --demo --state build/demo-state --http 127.0.0.1:8080 "$@"
