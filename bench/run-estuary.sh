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
# STEPS      subset of: ship recv e2e lat recv-prebuilt (default: ship recv e2e lat, in that
#            order); "none" only prints the tables for the existing results in $WORKDIR
#
# recv-prebuilt: the receiver-alone pair (issue 3) with bench/blast_prebuilt.py, which builds every
# message before it connects so that the load generator is not the limit. The shared harness is
# read-only, so it is copied to $WORKDIR/harness-prebuilt with blast_prebuilt.py in blast.py's
# place; the generator's own ceiling (into a discard reader) goes to $WORKDIR/ceiling.jsonl and
# the runs to $WORKDIR/results-prebuilt.jsonl, apart from blast.py's runs of the same scenarios.
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
PRE_OUT=$WORKDIR/results-prebuilt.jsonl
PRE_BENCH=$WORKDIR/harness-prebuilt
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
# run HARNESS RESULTS run.py-arguments...
run_in() {
    local bench=$1 out=$2
    shift 2
    echo "== $(date -u +%T) $bench $*  [$(cut -d' ' -f1-3 /proc/loadavg)]" | tee -a "$WORKDIR/session.txt"
    python3 "$bench/run.py" "$@" --repeat "$R" --timeout "$T" \
        --workdir "$WORKDIR/runs" --results "$out" &
    child=$!
    wait "$child"
    child=
}
run() { run_in "$BENCH_DIR" "$OUT" "$@"; }
sc() { echo "$BENCH_DIR/scenarios/$1.json"; }
prebuilt_harness() {
    rm -rf "$PRE_BENCH"
    mkdir -p "$PRE_BENCH"
    tar -C "$BENCH_DIR" --exclude=./runs --exclude=./results --exclude=./.peers -cf - . | tar -C "$PRE_BENCH" -xf -
    chmod -R u+w "$PRE_BENCH"
    cp "$root/bench/blast_prebuilt.py" "$PRE_BENCH/blast.py"
}

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
    recv-prebuilt) # issue 3: the receiver alone, every message built before the clock starts
        prebuilt_harness
        echo "== $(date -u +%T) generator ceiling: blast_prebuilt.py --sink --count $N" | tee -a "$WORKDIR/session.txt"
        python3 "$PRE_BENCH/blast.py" --sink --count "$N" | tee -a "$WORKDIR/ceiling.jsonl"
        for s in rsyslog-tcp estuary-tcp; do
            run_in "$PRE_BENCH" "$PRE_OUT" receiver --scenario "$PRE_BENCH/scenarios/$s.json" --count "$N"
        done ;;
    lat) # both issues: latency at a fixed rate
        for s in rsyslog-tcp estuary-ship-rsyslog-tcp estuary-relp; do
            run pipeline --scenario "$(sc "$s")" --count "$LN" --rate "$LR"
        done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
[ "$STEPS" = none ] || echo "uptime at end: $(uptime)" | tee -a "$WORKDIR/session.txt"

: >"$WORKDIR/summary.md"
for f in "$OUT" "$PRE_OUT"; do
    if [ -s "$f" ]; then
        { echo "## summarize.py $(basename "$f")"; python3 "$BENCH_DIR/summarize.py" "$f"; } | tee -a "$WORKDIR/summary.md"
    fi
done
# Per-issue tables: ours beside the peer, CPU per 1M lines per process, peak RSS, targets.
python3 - "$OUT" "$PRE_OUT" "$WORKDIR/ceiling.jsonl" <<'EOF' | tee -a "$WORKDIR/summary.md"
import json, os, statistics, sys
from collections import OrderedDict

def load(path):
    groups = OrderedDict()
    if os.path.exists(path):
        for line in open(path):
            if line.strip():
                d = json.loads(line)
                groups.setdefault((d["scenario"], d["mode"], d["rate"]), []).append(d)
    return groups

g = load(sys.argv[1])
prebuilt = load(sys.argv[2])
ceiling = [json.loads(l) for l in open(sys.argv[3]) if l.strip()] if os.path.exists(sys.argv[3]) else []

def vals(key, sc, mode="pipeline", rate=0, f=None, G=None):
    v = (g if G is None else G).get((sc, mode, rate), [])
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
of = lambda G, sc, mode, rate: (g if G is None else G).get((sc, mode, rate), [])
lossdup = lambda sc, mode="pipeline", rate=0, G=None: "%s; %s" % (
    "/".join(str(d.get("lost")) for d in of(G, sc, mode, rate)),
    "/".join(str(d.get("duplicated")) for d in of(G, sc, mode, rate)))
runs = lambda sc, mode="pipeline", rate=0, G=None: len(of(G, sc, mode, rate))
mal = lambda sc, mode="pipeline", rate=0, G=None: sum((d.get("malformed") or 0) + (d.get("unparsed_lines") or 0)
                                                     for d in of(G, sc, mode, rate))

def ratio(a, b):
    return a / b if (a is not None and b) else None

def verdict(ok):
    return "**met**" if ok else "**not met**"

tp = lambda sc, mode="pipeline", G=None: vals("throughput_lps", sc, mode, G=G)

if runs("estuary-ship-rsyslog-tcp"):
    print("### Shipper: `estuary-ship-rsyslog-tcp` beside `rsyslog-tcp` (pipeline, same rsyslog receiver)\n")
    print("| scenario | runs | lines/s | shipper CPU s per 1M | receiver CPU s per 1M | shipper peak RSS MiB | lost per run; dup per run | malformed+unparsed |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for sc in ("rsyslog-tcp", "estuary-ship-rsyslog-tcp"):
        print("| %s | %d | %s | %s | %s | %s | %s | %d |" % (sc, runs(sc), sp(tp(sc)), sp(vals(None, sc, f=per1m("shipper_cpu_s")), 2),
              sp(vals(None, sc, f=per1m("receiver_cpu_s")), 2), sp(vals("shipper_maxrss_mb", sc), 1), lossdup(sc), mal(sc)))

def receiver_table(G, title, load):
    if not runs("estuary-tcp", "receiver", G=G):
        return
    print("\n### Receiver alone: `estuary-tcp` beside `rsyslog-tcp` (receiver mode, %s)\n" % title)
    print("| scenario | runs | messages/s | %s send rate msgs/s | receiver CPU s per 1M | receiver cores busy | receiver peak RSS MiB | lost per run; dup per run | malformed+unparsed |" % load)
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    busy = lambda d: d["receiver_cpu_s"] / d["duration_s"] if d.get("receiver_cpu_s") is not None and d.get("duration_s") else None
    for sc in ("rsyslog-tcp", "estuary-tcp"):
        print("| %s | %d | %s | %s | %s | %s | %s | %s | %d |" % (sc, runs(sc, "receiver", G=G), sp(tp(sc, "receiver", G)),
              sp(vals(None, sc, "receiver", f=lambda d: d["load"].get("rate_achieved"), G=G)),
              sp(vals(None, sc, "receiver", f=per1m("receiver_cpu_s"), G=G), 2), sp(vals(None, sc, "receiver", f=busy, G=G), 2),
              sp(vals("receiver_maxrss_mb", sc, "receiver", G=G), 1), lossdup(sc, "receiver", G=G), mal(sc, "receiver", G=G)))

receiver_table(g, "blast.py over one TCP connection", "blast.py")
receiver_table(prebuilt, "blast_prebuilt.py: all messages built before the clock starts, one TCP connection",
               "blast_prebuilt.py")
for c in ceiling:
    print("\nGenerator ceiling, blast_prebuilt.py into a discard reader: {:,.0f} msgs/s ({:,} messages, {:,} bytes, built in {:.1f} s)".format(
          c["sink_rate"], c["count"], c["sink_bytes"], c["build_s"]))

if runs("estuary-tcp") or runs("estuary-relp"):
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
    print("| %s | %s | %s |" % (name, measured, verdict(ok) if measured != "-" else "-"))
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
row("aggregator alone: >= 3x rsyslog's receiver (blast.py)", "%.2fx" % r if r else "-", r is not None and r >= 3)
r = ratio(med(tp("estuary-tcp", "receiver", prebuilt)), med(tp("rsyslog-tcp", "receiver", prebuilt)))
row("aggregator alone: >= 3x rsyslog's receiver (blast_prebuilt.py)", "%.2fx" % r if r else "-", r is not None and r >= 3)
t = med(tp("estuary-relp"))
row("RELP end to end: >= 300,000 lines/s", "{:,.0f}".format(t) if t else "-", t is not None and t >= 300000)
r = ratio(t, med(tp("rsyslog-relp-w1024")))
row("RELP end to end: 5x rsyslog RELP (window 1024)", "%.2fx" % r if r else "-", r is not None and r >= 5)
c = med(vals(None, "estuary-relp", f=both1m))
row("RELP end to end: <= 4 CPU s per 1M lines, both daemons", "%.2f" % c if c is not None else "-", c is not None and c <= 4)
ours = [d for G in (g, prebuilt) for k in G if k[0].startswith("estuary") for d in G[k]]
lost = sum(d.get("lost") or 0 for d in ours)
dup = sum(d.get("duplicated") or 0 for d in ours)
bad = sum((d.get("malformed") or 0) + (d.get("unparsed_lines") or 0) for d in ours)
n = len(ours)
row("no loss, no duplicate (all %d estuary runs)" % n, "lost %d, duplicated %d, malformed/unparsed %d" % (lost, dup, bad),
    lost == 0 and dup == 0 and bad == 0)
EOF
echo "results: $OUT $PRE_OUT  summary: $WORKDIR/summary.md"
