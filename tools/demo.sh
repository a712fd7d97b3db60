#!/bin/bash
# Quick start, part one: installs everything citycmd needs, builds it, and
# runs the server on the bundled demo city with its simulators: the duty
# officer (in the server), calls replayed from data/sf-fire-calls-sample.csv
# (tools/replay-calls.mjs, one every 15 s, every 25th a simulated water-main
# burst) and the demo fleet driving the
# city's roads and reporting over the trackers' own protocols
# (tools/gps-sim.mjs), and simulated RTSP cameras (build/camera-sim).
# Ctrl-C stops them all.
#   bash tools/demo.sh [extra citycmd flags, e.g. --http 0.0.0.0:8443 --tls-cert C --tls-key K]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
make -s all

# Where the simulators find the server: --http if given, else the default.
http=127.0.0.1:8080
tls=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --http) http="${args[i + 1]:-$http}" ;;
    --http=*) http="${args[i]#--http=}" ;;
    --tls-cert | --tls-cert=*) tls=1 ;;
  esac
done
host=${http%:*}
[[ $host == 0.0.0.0 ]] && host=127.0.0.1
url="http://$host:${http##*:}"

echo "citycmd: demo on $url/ (sign in as duty, password citycmd-demo; Ctrl-C to stop; state in build/demo-state)" >&2
# Its own session, so that Ctrl-C reaches it once, from stop() below, and
# not also from the terminal (a second signal would cut its drain short).
setsid build/citycmd --demo --state build/demo-state --http 127.0.0.1:8080 "$@" &
server=$!
sims=()
# The demo's cameras (web/demo.c) watch the simulator's mounts /cam1../cam4:
# Big Buck Bunny looped, © Blender Foundation, CC BY 3.0.
build/camera-sim --port 8554 --cameras 4 --synthetic 1 >build/demo-cameras.log 2>&1 &
sims+=($!)
stop() {
  trap - EXIT INT TERM
  ((${#sims[@]})) && kill "${sims[@]}" 2>/dev/null
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap stop EXIT INT TERM

if ((tls)); then
  echo "citycmd: the simulators speak plain HTTP; with TLS the demo runs without them" >&2
else
  # Ready when /readyz answers (node is installed by install-deps.sh).
  node -e '
    const url = process.argv[1];
    (async () => {
      for (let i = 0; i < 200; i++) {
        try { if ((await fetch(url + "/readyz")).ok) process.exit(0); } catch {}
        await new Promise((r) => setTimeout(r, 100));
      }
      process.exit(1);
    })();' "$url" || { echo "citycmd: the server did not become ready" >&2; exit 1; }
  export CITYCMD_PASSWORD=citycmd-demo
  node tools/replay-calls.mjs --url "$url" --user calltaker --csv data/sf-fire-calls-sample.csv \
    --rate 0.066 --bursts-every 25 >build/demo-calls.log 2>&1 &
  sims+=($!)
  node tools/gps-sim.mjs --url "$url" --user duty --units --every 5 >build/demo-gps.log 2>&1 &
  sims+=($!)
  echo "citycmd: simulated calls, vehicles and cameras running (logs in build/demo-calls.log, build/demo-gps.log, build/demo-cameras.log)" >&2
fi
wait "$server"
