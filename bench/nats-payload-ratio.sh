#!/usr/bin/env bash
# How much a stream message of the NATS pipeline benchmark shrinks: the shared harness's
# generator writes conn.log-style lines, each is wrapped in the shipper's RFC 5424 envelope with
# its origin element (as the `nats` destination sends it), the text is cut into 256 KiB
# batches at line ends, and each batch is compressed alone with the zstd and lz4 command-line
# tools. Prints the ratio (plain bytes / compressed bytes) per codec.
#
#   bench/nats-payload-ratio.sh [BENCH_DIR]      (BENCH_DIR default ../shared/bench)
#
# LINES=20000 WORKDIR=${TMPDIR:-/tmp}/estuary-payload-ratio
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${1:-${BENCH_DIR:-$root/../shared/bench}}
LINES=${LINES:-20000}
WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/estuary-payload-ratio}
rm -rf "$WORKDIR" && mkdir -p "$WORKDIR/batches"
python3 "$BENCH_DIR/gen.py" --file "$WORKDIR/lines.log" --count "$LINES" >/dev/null
awk -v host=bench '{
    printf "<190>1 2026-12-07T21:06:44.%06dZ %s bro_conn - - [origin@32473 file=\"3a5f0c2e9b7d4411\" off=\"%d\"] %s\n", NR % 1000000, host, off, $0
    off += length($0) + 1
}' "$WORKDIR/lines.log" >"$WORKDIR/messages"
split -C 262144 "$WORKDIR/messages" "$WORKDIR/batches/b"
plain=$(cat "$WORKDIR"/batches/b* | wc -c)
for codec in "zstd -1" "zstd --fast=1" "lz4 -1"; do
    packed=0
    for b in "$WORKDIR"/batches/b*; do
        n=$($codec -c "$b" | wc -c)
        packed=$((packed + n))
    done
    awk -v c="$codec" -v p="$plain" -v z="$packed" 'BEGIN { printf "%-14s %.2fx (%d -> %d bytes)\n", c, p / z, p, z }'
done
