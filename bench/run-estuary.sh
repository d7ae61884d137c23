#!/usr/bin/env bash
# estuary's benchmark matrix beside the peers, in one session, with the shared harness
# (run.py, gen.py, blast.py, summarize.py). See BENCHMARKS.md for the figures it produced.
#
#   bench/run-estuary.sh [BENCH_DIR]
#
# BENCH_DIR  the shared harness directory (argument or env; default ../shared/bench, relative to
#            the repository root)
# ESTUARY_BIN  binary to measure (default: ${CARGO_TARGET_DIR:-target}/release/estuary, built
#            with `cargo build --release` unless NO_BUILD=1)
# WORKDIR    run directories and results.jsonl (default: ${TMPDIR:-/tmp}/estuary-bench)
# REPEAT=3 COUNT=2000000 LAT_COUNT=200000 LAT_RATE=10000 TIMEOUT=180
# STEPS      subset of: ship recv e2e lat (default all four, in that order); "none" only
#            prints the tables for an existing $WORKDIR/results.jsonl
#
# Every run is bounded by run.py --timeout and stops only the processes it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BENCH_DIR=${1:-${BENCH_DIR:-../shared/bench}}
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
R=${REPEAT:-3}
N=${COUNT:-2000000}
LN=${LAT_COUNT:-200000}
LR=${LAT_RATE:-10000}
T=${TIMEOUT:-180}
STEPS=${STEPS:-ship recv e2e lat}
WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/estuary-bench}
OUT=$WORKDIR/results.jsonl
mkdir -p "$WORKDIR"
if [ "$STEPS" != none ]; then
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
        echo "nproc: $(nproc)"
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
        echo "kernel: $(uname -r)"
        echo "rsyslogd: $(/usr/sbin/rsyslogd -v 2>/dev/null | head -1)"
        echo "uptime at start: $(uptime)"
    } | tee -a "$WORKDIR/session.txt"
fi

child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait; exit 143' TERM INT
run() {
    echo "== $(date -u +%T) $*  [$(cut -d' ' -f1-3 /proc/loadavg)]" | tee -a "$WORKDIR/session.txt"
    python3 "$BENCH_DIR/run.py" "$@" --repeat "$R" --timeout "$T" \
        --workdir "$WORKDIR/runs" --results "$OUT" &
    child=$!
    wait "$child"
    child=
}
sc() { echo "$BENCH_DIR/scenarios/$1.json"; }

for step in $STEPS; do
    case $step in
    none) ;;
    ship) # issue 2: our shipper against rsyslog's, into the same rsyslog receiver
        run pipeline --scenario "$(sc rsyslog-tcp)" --count "$N"
        run pipeline --scenario "$(sc estuary-ship-rsyslog-tcp)" --count "$N" ;;
    recv) # issue 3: the receiver alone, blast.py over one TCP connection
        run receiver --scenario "$(sc rsyslog-tcp)" --count "$N"
        run receiver --scenario "$(sc estuary-tcp)" --count "$N" ;;
    e2e) # issue 3: end to end, TCP and RELP
        run pipeline --scenario "$(sc estuary-tcp)" --count "$N"
        run pipeline --scenario "$(sc estuary-relp)" --count "$N"
        run pipeline --scenario "$(sc rsyslog-relp-w1024)" --count "$N" ;;
    lat) # both issues: latency at a fixed rate
        for s in rsyslog-tcp estuary-ship-rsyslog-tcp estuary-relp; do
            run pipeline --scenario "$(sc "$s")" --count "$LN" --rate "$LR"
        done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
[ "$STEPS" = none ] || echo "uptime at end: $(uptime)" | tee -a "$WORKDIR/session.txt"

python3 "$BENCH_DIR/summarize.py" "$OUT" | tee "$WORKDIR/summary.md"
# Per-issue tables: ours beside the peer, CPU per 1M lines per process, peak RSS, targets.
python3 - "$OUT" <<'EOF' | tee -a "$WORKDIR/summary.md"
import json, statistics, sys
from collections import OrderedDict

g = OrderedDict()
for line in open(sys.argv[1]):
    if line.strip():
        d = json.loads(line)
        g.setdefault((d["scenario"], d["mode"], d["rate"]), []).append(d)

def vals(key, sc, mode="pipeline", rate=0, f=None):
    v = g.get((sc, mode, rate), [])
    out = []
    for d in v:
        x = d.get(key) if f is None else f(d)
        if x is not None:
            out.append(x)
    return out

def med(xs):
    return statistics.median(xs) if xs else None

def sp(xs, nd=0):
    if not xs:
        return "-"
    f = lambda x: "{:,.{}f}".format(x, nd)
    if len(xs) == 1:
        return f(xs[0])
    return "%s (%s..%s)" % (f(statistics.median(xs)), f(min(xs)), f(max(xs)))

per1m = lambda k: (lambda d: d[k] / d["count"] * 1e6 if d.get(k) is not None else None)
both1m = lambda d: ((d.get("shipper_cpu_s") or 0) + (d.get("receiver_cpu_s") or 0)) / d["count"] * 1e6
lossdup = lambda sc, mode="pipeline", rate=0: "%s; %s" % (
    "/".join(str(d.get("lost")) for d in g.get((sc, mode, rate), [])),
    "/".join(str(d.get("duplicated")) for d in g.get((sc, mode, rate), [])))
runs = lambda sc, mode="pipeline", rate=0: len(g.get((sc, mode, rate), []))
mal = lambda sc, mode="pipeline", rate=0: sum((d.get("malformed") or 0) + (d.get("unparsed_lines") or 0)
                                             for d in g.get((sc, mode, rate), []))

def ratio(a, b):
    return a / b if (a is not None and b) else None

def verdict(ok):
    return "**met**" if ok else "**not met**"

tp = lambda sc, mode="pipeline": vals("throughput_lps", sc, mode)

print("### Shipper: `estuary-ship-rsyslog-tcp` beside `rsyslog-tcp` (pipeline, same rsyslog receiver)\n")
print("| scenario | runs | lines/s | shipper CPU s per 1M | receiver CPU s per 1M | shipper peak RSS MiB | lost per run; dup per run | malformed+unparsed |")
print("|---|---:|---:|---:|---:|---:|---|---:|")
for sc in ("rsyslog-tcp", "estuary-ship-rsyslog-tcp"):
    print("| %s | %d | %s | %s | %s | %s | %s | %d |" % (sc, runs(sc), sp(tp(sc)), sp(vals(None, sc, f=per1m("shipper_cpu_s")), 2),
          sp(vals(None, sc, f=per1m("receiver_cpu_s")), 2), sp(vals("shipper_maxrss_mb", sc), 1), lossdup(sc), mal(sc)))

print("\n### Receiver alone: `estuary-tcp` beside `rsyslog-tcp` (receiver mode, blast.py over one TCP connection)\n")
print("| scenario | runs | messages/s | blast.py send rate msgs/s | receiver CPU s per 1M | receiver peak RSS MiB | lost per run; dup per run | malformed+unparsed |")
print("|---|---:|---:|---:|---:|---:|---|---:|")
for sc in ("rsyslog-tcp", "estuary-tcp"):
    print("| %s | %d | %s | %s | %s | %s | %s | %d |" % (sc, runs(sc, "receiver"), sp(tp(sc, "receiver")),
          sp(vals(None, sc, "receiver", f=lambda d: d["load"].get("rate_achieved"))),
          sp(vals(None, sc, "receiver", f=per1m("receiver_cpu_s")), 2), sp(vals("receiver_maxrss_mb", sc, "receiver"), 1),
          lossdup(sc, "receiver"), mal(sc, "receiver")))

print("\n### End to end: `estuary-tcp`, `estuary-relp` beside `rsyslog-tcp`, `rsyslog-relp-w1024` (pipeline)\n")
print("| scenario | runs | lines/s | CPU s per 1M, shipper + receiver | shipper / receiver peak RSS MiB | lost per run; dup per run | malformed+unparsed |")
print("|---|---:|---:|---:|---:|---|---:|")
for sc in ("rsyslog-tcp", "estuary-tcp", "rsyslog-relp-w1024", "estuary-relp"):
    print("| %s | %d | %s | %s (%s + %s) | %s / %s | %s | %d |" % (sc, runs(sc), sp(tp(sc)), sp(vals(None, sc, f=both1m), 2),
          "{:.2f}".format(med(vals(None, sc, f=per1m("shipper_cpu_s"))) or 0),
          "{:.2f}".format(med(vals(None, sc, f=per1m("receiver_cpu_s"))) or 0),
          sp(vals("shipper_maxrss_mb", sc), 1), sp(vals("receiver_maxrss_mb", sc), 1), lossdup(sc), mal(sc)))

lat_rate = max([k[2] for k in g if k[2] > 0] or [0])
if lat_rate:
    print("\n### Latency at %s lines/s (write into the input file -> line visible in the receiver's output file)\n" % "{:,.0f}".format(lat_rate))
    print("| scenario | runs | p50 ms | p99 ms | p99.9 ms | max ms | shipper CPU s per 1M | shipper peak RSS MiB | lost per run; dup per run |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for sc in ("rsyslog-tcp", "estuary-ship-rsyslog-tcp", "estuary-relp"):
        L = lambda q: vals(None, sc, rate=lat_rate, f=lambda d: (d.get("latency_ms") or {}).get(q))
        print("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (sc, runs(sc, rate=lat_rate), sp(L("p50"), 2), sp(L("p99"), 2),
              sp(L("p999"), 1), sp(L("max"), 1), sp(vals(None, sc, rate=lat_rate, f=per1m("shipper_cpu_s")), 2),
              sp(vals("shipper_maxrss_mb", sc, rate=lat_rate), 1), lossdup(sc, rate=lat_rate)))

# targets
print("\n### Targets (issues 2 and 3) against this session's medians\n")
print("| target | measured | verdict |")
print("|---|---|---|")
def row(name, measured, ok):
    print("| %s | %s | %s |" % (name, measured, verdict(ok) if ok is not None else "-"))
r = ratio(med(tp("estuary-ship-rsyslog-tcp")), med(tp("rsyslog-tcp")))
row("shipper: >= 1.8x rsyslog's lines/s into the same rsyslog receiver", "%.2fx" % r if r else "-", r is not None and r >= 1.8)
c = med(vals(None, "estuary-ship-rsyslog-tcp", f=per1m("shipper_cpu_s")))
row("shipper: <= 2.2 CPU s per 1M lines (max-rate run)", "%.2f" % c if c is not None else "-", c is not None and c <= 2.2)
allrss = vals("shipper_maxrss_mb", "estuary-ship-rsyslog-tcp") + vals("shipper_maxrss_mb", "estuary-ship-rsyslog-tcp", rate=lat_rate)
m = max(allrss) if allrss else None
row("shipper: peak RSS < 30 MiB (largest of all its runs)", "%.1f MiB" % m if m else "-", m is not None and m < 30)
for sc in ("estuary-ship-rsyslog-tcp", "estuary-relp"):
    p = med(vals(None, sc, rate=lat_rate, f=lambda d: (d.get("latency_ms") or {}).get("p99")))
    row("p99 < 2 ms at 10,000 lines/s (%s)" % sc, "%.2f ms" % p if p is not None else "-", p is not None and p < 2)
r = ratio(med(tp("estuary-tcp", "receiver")), med(tp("rsyslog-tcp", "receiver")))
row("aggregator alone: >= 3x rsyslog's receiver", "%.2fx" % r if r else "-", r is not None and r >= 3)
t = med(tp("estuary-relp"))
row("RELP end to end: >= 300,000 lines/s", "{:,.0f}".format(t) if t else "-", t is not None and t >= 300000)
r = ratio(t, med(tp("rsyslog-relp-w1024")))
row("RELP end to end: 5x rsyslog RELP (window 1024)", "%.2fx" % r if r else "-", r is not None and r >= 5)
c = med(vals(None, "estuary-relp", f=both1m))
row("RELP end to end: <= 4 CPU s per 1M lines, both daemons", "%.2f" % c if c is not None else "-", c is not None and c <= 4)
ours = [k for k in g if k[0].startswith("estuary")]
lost = sum(d.get("lost") or 0 for k in ours for d in g[k])
dup = sum(d.get("duplicated") or 0 for k in ours for d in g[k])
bad = sum((d.get("malformed") or 0) + (d.get("unparsed_lines") or 0) for k in ours for d in g[k])
n = sum(len(g[k]) for k in ours)
row("no loss, no duplicate (all %d estuary runs)" % n, "lost %d, duplicated %d, malformed/unparsed %d" % (lost, dup, bad),
    lost == 0 and dup == 0 and bad == 0)
EOF
echo "results: $OUT  summary: $WORKDIR/summary.md"
