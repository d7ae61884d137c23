#!/usr/bin/env bash
# Two shipper builds, before and after a change, run alternately beside rsyslog in one session with
# the shared harness: latency and CPU per line at a fixed rate (the rate sensors write at), then
# maximum throughput end to end. See BENCHMARKS.md for the figures it produced.
#
#   bench/shipper-pair.sh BEFORE_BIN AFTER_BIN [BENCH_DIR]
#
# BENCH_DIR  the shared harness directory (default ../shared/bench, relative to the repository root)
# WORKDIR    run directories and results (default: ${TMPDIR:-/tmp}/estuary-shipper-pair)
# REPEAT=3 LAT_COUNT=200000 LAT_RATE=10000 COUNT=2000000 TIMEOUT=180
# STEPS      subset of: lat max (default: lat max); "none" only prints the tables
#
# Every run goes through run.py with --repeat 1, so that the builds alternate run by run; the load
# average before each run is kept beside its result (loadavg.jsonl).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,13p' "$0"; exit 2; }
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
BEFORE=$(abs "$1")
AFTER=$(abs "$2")
cd "$root"
BENCH_DIR=$(cd "${3:-${BENCH_DIR:-../shared/bench}}" && pwd)
R=${REPEAT:-3}
LN=${LAT_COUNT:-200000}
LR=${LAT_RATE:-10000}
N=${COUNT:-2000000}
T=${TIMEOUT:-180}
STEPS=${STEPS:-lat max}
WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/estuary-shipper-pair}
mkdir -p "$WORKDIR"

child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait; exit 143' TERM INT
# one BUILD SCENARIO COUNT RATE: one run, its result in $WORKDIR/results.jsonl tagged with the build
one() {
    local build=$1 sc=$2 count=$3 rate=$4 bin=$BEFORE load
    [ "$build" = after ] && bin=$AFTER
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "== $(date -u +%T) $build $sc count=$count rate=$rate [load $load]" | tee -a "$WORKDIR/session.txt"
    ESTUARY_BIN=$bin python3 "$BENCH_DIR/run.py" pipeline --scenario "$BENCH_DIR/scenarios/$sc.json" \
        --count "$count" --rate "$rate" --repeat 1 --timeout "$T" --workdir "$WORKDIR/runs" \
        --results "$WORKDIR/run.jsonl" >/dev/null &
    child=$!
    wait "$child"
    child=
    tail -n1 "$WORKDIR/run.jsonl" | python3 -c 'import json, sys
d = json.loads(sys.stdin.read()); d["build"] = sys.argv[1]; d["loadavg"] = sys.argv[2]; print(json.dumps(d))' \
        "$build" "$load" >>"$WORKDIR/results.jsonl"
}

if [ "$STEPS" != none ]; then
    {
        echo "date: $(date -u +%FT%TZ)"
        echo "before: $BEFORE"
        echo "after: $AFTER"
        echo "nproc: $(nproc)"
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
        echo "kernel: $(uname -r)"
        echo "rsyslogd: $(/usr/sbin/rsyslogd -v 2>/dev/null | head -1)"
        echo "uptime at start: $(uptime)"
    } | tee -a "$WORKDIR/session.txt"
fi
for step in $STEPS; do
    case $step in
    none) ;;
    lat)
        for _ in $(seq "$R"); do
            one rsyslog rsyslog-tcp "$LN" "$LR"
            for sc in estuary-ship-rsyslog-tcp estuary-relp; do
                one before "$sc" "$LN" "$LR"
                one after "$sc" "$LN" "$LR"
            done
        done ;;
    max)
        for _ in $(seq "$R"); do
            for sc in estuary-relp estuary-tcp; do
                one before "$sc" "$N" 0
                one after "$sc" "$N" 0
            done
        done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
[ "$STEPS" = none ] || echo "uptime at end: $(uptime)" | tee -a "$WORKDIR/session.txt"

python3 - "$WORKDIR/results.jsonl" <<'EOF' | tee "$WORKDIR/summary.md"
import json, statistics, sys
from collections import OrderedDict

groups = OrderedDict()
for line in open(sys.argv[1]):
    if line.strip():
        d = json.loads(line)
        groups.setdefault((d["rate"] > 0, d["scenario"], d["build"]), []).append(d)

def sp(xs, nd):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    f = lambda x: "{:,.{}f}".format(x, nd)
    if len(xs) == 1:
        return f(xs[0])
    return "%s (%s..%s)" % (f(statistics.median(xs)), f(min(xs)), f(max(xs)))

per1m = lambda d, k: d[k] / d["count"] * 1e6 if d.get(k) is not None else None
lat = lambda d, q: (d.get("latency_ms") or {}).get(q)
lossdup = lambda v: "%s; %s" % ("/".join(str(d.get("lost")) for d in v), "/".join(str(d.get("duplicated")) for d in v))
loads = lambda v: ", ".join(d["loadavg"].split()[0] for d in v)

print("| scenario at %s lines/s | build | runs | shipper CPU s per 1M | p50 ms | p99 ms | max ms | lost; dup | load (1 min) |"
      % "{:,.0f}".format(max(d["rate"] for v in groups.values() for d in v)))
print("|---|---|---:|---:|---:|---:|---:|---|---|")
for (fixed, sc, build), v in groups.items():
    if fixed:
        print("| %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (sc, build, len(v), sp([per1m(d, "shipper_cpu_s") for d in v], 2),
              sp([lat(d, "p50") for d in v], 2), sp([lat(d, "p99") for d in v], 2), sp([lat(d, "max") for d in v], 1),
              lossdup(v), loads(v)))
print()
print("| scenario, maximum rate | build | runs | lines/s | CPU s per 1M, shipper | CPU s per 1M, receiver | lost; dup | load (1 min) |")
print("|---|---|---:|---:|---:|---:|---|---|")
for (fixed, sc, build), v in groups.items():
    if not fixed:
        print("| %s | %s | %d | %s | %s | %s | %s | %s |" % (sc, build, len(v), sp([d.get("throughput_lps") for d in v], 0),
              sp([per1m(d, "shipper_cpu_s") for d in v], 2), sp([per1m(d, "receiver_cpu_s") for d in v], 2),
              lossdup(v), loads(v)))
EOF
echo "results: $WORKDIR/results.jsonl  summary: $WORKDIR/summary.md"
