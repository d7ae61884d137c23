#!/usr/bin/env bash
# `estuary query` beside `zcat | zeek-cut | awk` and `rg -z`, and archive compression beside
# `gzip -6` and `pigz -6`, in one session over a generated conn.log archive (about 2.2 GB of log).
# See BENCHMARKS.md for the figures.
#
#   bench/query-bench.sh [WORKDIR]
#
# WORKDIR   data and outputs (default ${TMPDIR:-/tmp}/estuary-query-bench); the log is generated
#           there once with bench/query-gen.py and kept for later runs
# ESTUARY_BIN, COMPRESS_BIN   default target/release/estuary and target/release/examples/compress
#           (cargo build --release --bin estuary --example compress -p estuary -p estuary-archive)
# REPEAT=3  runs of each query and rounds of compression (the median is printed)
# STEPS     subset of: compress query (default both)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-${TMPDIR:-/tmp}/estuary-query-bench}
EST=${ESTUARY_BIN:-$root/target/release/estuary}
COMPRESS=${COMPRESS_BIN:-$root/target/release/examples/compress}
R=${REPEAT:-3}
STEPS=${STEPS:-compress query}
export TZ=UTC
mkdir -p "$W"
[ -d "$W/plain" ] || python3 "$root/bench/query-gen.py" "$W/plain"
cc -O2 -o "$W/zeek-cut" "$root/bench/zeek-cut-lite.c"
mapfile -t plain < <(cd "$W/plain" && ls -d */conn.*.log | sort)
# COMPRESS_FILES=N compresses only the first N files in the compression table (a loaded machine).
mapfile -t squeeze < <(printf '%s\n' "${plain[@]}" | head -n "${COMPRESS_FILES:-${#plain[@]}}")
bytes=$(cd "$W/plain" && cat "${plain[@]}" | wc -c)
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }')
echo "log: ${#plain[@]} files, $mb MB; $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# "wall cpu": seconds of wall time and of CPU (user + system, children included) of "$@", whose
# output goes to /dev/null. On a shared machine the CPU seconds move less with the load.
seconds() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" >/dev/null; } 2>&1 | tail -1)
  awk -v t="$t" 'BEGIN { split(t, v, " "); printf "%.2f %.2f", v[1], v[2] + v[3] }'
}
# The run with the median wall time, of "wall cpu" pairs.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }

# compress_all NAME OUTDIR COMMAND...: every plain file through COMMAND (stdin to stdout).
compress_all() {
  local name=$1 out=$2; shift 2
  for f in "${squeeze[@]}"; do
    mkdir -p "$out/$(dirname "$f")"
    "$@" < "$W/plain/$f" > "$out/$f.gz" || touch "$out/.failed"
  done
}

if [[ " $STEPS " == *" compress "* ]]; then
  in_bytes=$(cd "$W/plain" && cat "${squeeze[@]}" | wc -c)
  echo; echo "compression input: ${#squeeze[@]} files, $((in_bytes / 1000000)) MB (page cache)"
  # The tools run in turn, REPEAT rounds, so that a change of load touches every tool alike; the
  # row shows the round with the median wall time.
  names=("gzip -6" "pigz -6 -p 1" "pigz -6 -p 2" "estuary level 6" "estuary level 6")
  threads=(1 1 2 1 2)
  declare -A times=()
  for ((round = 0; round < R; round++)); do
    for i in "${!names[@]}"; do
      out="$W/squeezed$i"
      rm -rf "$out"
      case $i in
        0) s=$(seconds compress_all gzip "$out" gzip -6 -c) ;;
        1) s=$(seconds compress_all pigz "$out" pigz -6 -p 1 -c) ;;
        2) s=$(seconds compress_all pigz "$out" pigz -6 -p 2 -c) ;;
        3) s=$(RAYON_NUM_THREADS=1 seconds compress_all estuary "$out" "$COMPRESS" 6) ;;
        4) s=$(RAYON_NUM_THREADS=2 seconds compress_all estuary "$out" "$COMPRESS" 6) ;;
      esac
      [ ! -e "$out/.failed" ] || { echo "${names[$i]}: failed (disk full?)"; exit 1; }
      times[$i]+="$s,$(du -cb "$out" | tail -1 | cut -f1);"
      rm -rf "$out"
    done
  done
  echo "| compressor | threads | wall s | CPU s | MB/s total (wall) | MB/s per CPU second | CPU ms per MB | ratio |"
  echo "|---|---|---|---|---|---|---|---|"
  for i in "${!names[@]}"; do
    m=$(median $(tr ';' '\n' <<< "${times[$i]}" | grep . | tr ',' ' ' | awk '{ print $1 "," $2 "," $3 }'))
    awk -v n="${names[$i]}" -v t="${threads[$i]}" -v m="$m" -v b="$in_bytes" 'BEGIN {
      split(m, v, ",")
      printf "| %s | %d | %.2f | %.2f | %.1f | %.1f | %.1f | %.2f |\n", n, t, v[1], v[2], b / 1e6 / v[1], b / 1e6 / v[2], v[2] * 1e3 / (b / 1e6), b / v[3] }'
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
# The archives the queries read, from every file: zeekctl's layout (gzip -6, one stream per file)
# and estuary's (level 6 members), each made once.
if [[ " $STEPS " == *" query "* ]]; then
  squeeze=("${plain[@]}")
  [ -d "$W/zeekctl" ] || compress_all gzip "$W/zeekctl" gzip -6 -c
  [ -d "$W/estuary" ] || RAYON_NUM_THREADS=2 compress_all estuary "$W/estuary" "$COMPRESS" 6
fi

if [[ " $STEPS " == *" query "* ]]; then
  from=2026-11-02T14:00:00Z to=2026-11-03T16:00:00Z
  a=$(date -d "$from" +%s) b=$(date -d "$to" +%s)
  addr=203.0.113.7
  cat "$W"/zeekctl/*/*.gz "$W"/estuary/*/*.gz > /dev/null
  cols=(ts uid id.orig_h id.resp_h id.resp_p)
  pipeline() {
    zcat "$W"/zeekctl/*/conn.*.log.gz | "$W/zeek-cut" "${cols[@]}" \
      | awk -F'\t' -v a="$a" -v b="$b" -v h="$addr" '$4 == h && $1 >= a && $1 < b'
  }
  estuary() { # LAYOUT [extra args]
    local dir=$1; shift
    "$EST" query --logdir "$W/$dir" conn "id.resp_h=$addr" --from "$from" --to "$to" \
      --cut "$(IFS=,; echo "${cols[*]}")" "$@"
  }
  rgz() { rg -z -N --no-filename -F "$addr" "$W"/zeekctl/*/conn.*.log.gz; }
  want=$(pipeline | sort | sha256sum)
  rows=$(pipeline | wc -l)
  for layout in estuary zeekctl; do
    [ "$(estuary "$layout" | sort | sha256sum)" = "$want" ] || { echo "estuary ($layout) differs"; exit 1; }
  done
  echo; echo "answer: $rows rows, the same from the pipeline and estuary query (both layouts)"
  echo "| command | wall s (median of $R) | CPU s | wall vs pipeline | CPU vs pipeline |"
  echo "|---|---|---|---|---|"
  base=
  row() { # NAME COMMAND...
    local name=$1; shift
    local times=() i
    for ((i = 0; i < R; i++)); do times+=("$(seconds "$@")"); done
    local m; m=$(median "${times[@]}")
    base=${base:-$m}
    awk -v n="$name" -v m="$m" -v b="$base" 'BEGIN {
      split(m, v, " "); split(b, w, " ")
      printf "| %s | %.2f | %.2f | %.1fx | %.1fx |\n", n, v[1], v[2], w[1] / v[1], w[2] / v[2] }'
  }
  row "zcat | zeek-cut | awk (zeekctl archive)" pipeline
  row "rg -z -F $addr (zeekctl archive, prefilter only)" rgz
  row "estuary query, estuary archive" estuary estuary
  row "estuary query, zeekctl archive" estuary zeekctl
  row "estuary query --count, estuary archive, no time range" \
    "$EST" query --logdir "$W/estuary" conn "id.resp_h=$addr" --count
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
