#!/bin/bash
# Installs every Debian and npm package citycmd needs, on a fresh Debian 12
# (bookworm) machine, as root. Idempotent: packages already present are not
# fetched again, and npm installs only when web/package-lock.json changed.
#
#   tools/install-deps.sh          what building and running the server needs
#   tools/install-deps.sh --test   that, plus what the test suite needs
#   tools/install-deps.sh --bench  that, plus the peers the benchmarks run (ffmpeg)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME_PKGS=(
  ca-certificates gcc g++ make cmake pkg-config
  libglib2.0-dev libwebsockets-dev libwebsockets-evlib-glib libhiredis-dev
  libsqlite3-dev libsodium-dev libjansson-dev
  libcurl4-openssl-dev libxml2-dev
  libgdal-dev libgeos-dev libproj-dev proj-data
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  nodejs
)
TEST_PKGS=(
  libcmocka-dev redis-server chromium sqlite3 clang-format openssl gdal-bin libxml2-utils
  clang libclang-rt-14-dev gstreamer1.0-tools gstreamer1.0-plugins-base-apps
)
BENCH_PKGS=(
  ffmpeg # the peer of tools/bench/video_bench.mjs
)

SUDO=""
if [[ $EUID -ne 0 ]]; then SUDO=sudo; fi
TESTS=0 BENCH=0
if [[ "${1:-}" == "--test" ]]; then TESTS=1; fi
if [[ "${1:-}" == "--bench" ]]; then TESTS=1 BENCH=1; fi

want=("${RUNTIME_PKGS[@]}")
if ((TESTS)); then want+=("${TEST_PKGS[@]}"); fi
if ((BENCH)); then want+=("${BENCH_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs ships npm separately; other nodejs builds bundle it.
if ! command -v npm >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
fi

# npm packages, installed once per lock file: web/ holds what the browser
# clients are bundled from, tests/ what the integration and browser tests use.
npm_install() {
  local dir=$1 stamp=$1/node_modules/.citycmd-lock
  if [[ ! -f "$stamp" ]] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
npm_install web
if ((TESTS)); then npm_install tests; fi
