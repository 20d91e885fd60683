#!/usr/bin/env bash
# What each part of the schema costs an ingest, in instructions (callgrind) and index bytes.
#
# Builds threadline from this checkout's HEAD with experiment.patch applied (a `TL_EXP`
# variable that leaves fields out of every document or out of the fast fields, and `TL_ZSTD`
# for the doc store's level), generates the simulator's mix, and ingests it once per variant
# under callgrind, one variant after another. Instruction counts of one binary repeat to about
# ±0.1%. The numbers are for deciding what to work on, not a schema anyone should run: every
# variant but `none` answers some queries wrongly. The patch is written against the code of
# ff8269b; when it no longer applies, the script says so.
#
# Usage: benches/field_costs/run.sh [MB]      (default 25; needs valgrind)
# Variants: R resource, A attributes, B body, T trace_id column, S source, E span events,
# K kind/span_kind/status, N span name, ST the stored record (left out of every document);
# SR the resource left out of the stored record, SO the origin's file path left out of it;
# JNF does nothing since cf8a1c5 (the JSON fields have no fast columns); KNF `service` and
# `name` without fast columns (kind, status, span_kind and source have none since 1df4c0d and
# 9f937e9), BNP the body without positions; Z-1 the doc store at zstd level -1; RID and RIDF add
# a u64 `resource_id` (indexed and fast, or fast only) numbering the decoded resource blocks,
# the price of the id a resource table would need. Several at once: `R,SR,RIDF`.
# `VARIANTS="none R,SR"` runs only those.
# R, A, B, S, E, K and N filter every document's values, which costs about 1% on its own: E
# (this mix has few span events) shows what the filter costs.
set -euo pipefail

mb=${1:-25}
root=$(git rev-parse --show-toplevel)
work=${FIELD_COSTS_DIR:-$root/target/field-costs}
command -v valgrind >/dev/null || {
    echo "valgrind is needed (apt-get install valgrind)" >&2
    exit 1
}

rm -rf "$work/src"
mkdir -p "$work/src"
git -C "$root" archive HEAD | tar -x -C "$work/src"
if ! (cd "$work/src" && patch -p1 --quiet < "$root/benches/field_costs/experiment.patch"); then
    echo "experiment.patch no longer applies to HEAD: redo its toggles on the current code" >&2
    exit 1
fi
(cd "$work/src" && CARGO_TARGET_DIR="$work/target" cargo build --release --locked \
    -p cli -p checkout-sim --bin threadline --bin checkout-sim)
bin="$work/target/release"
if [ ! -d "$work/data-$mb" ]; then  # generated once per size, then reused
    "$bin/checkout-sim" --out "$work/data-$mb" --seed 7 --target-mb "$mb" >/dev/null
fi

base=""
printf '%-6s %14s %9s %12s\n' variant instructions "vs first" "index bytes"
for variant in ${VARIANTS:-none R A B T S E K N ST SR SO KNF BNP Z-1}; do
    index="$work/index"
    rm -rf "$index"
    zstd=""
    exp=$variant
    if [ "$variant" = Z-1 ]; then
        zstd=-1
        exp=none
    fi
    ir=$(TL_EXP=$exp TL_ZSTD=$zstd valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$bin/threadline" ingest --index "$index" "$work/data-$mb" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    bytes=$(du -sb "$index" | cut -f1)
    base=${base:-$ir}
    awk -v v="$variant" -v ir="$ir" -v base="$base" -v bytes="$bytes" \
        'BEGIN { printf "%-6s %12.3f G %+8.1f%% %12d\n", v, ir / 1e9, (ir / base - 1) * 100, bytes }'
done
rm -rf "$work/index"
