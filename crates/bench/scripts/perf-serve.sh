#!/bin/sh
# Runs leanmote-api, recording each `serve` process with perf; give this script
# to the benchmark as --server-bin. Admin subcommands run unrecorded. The
# benchmark's memory figures then describe perf, not the server.
#
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=target/profiling \
#       cargo build --release --bin leanmote-api
#   mkdir -p target/profiles
#   cargo run --release -p leanmote-bench -- --backend sqlite --batch-sizes 1000 \
#       --server-bin crates/bench/scripts/perf-serve.sh
#   perf report -i target/profiles/perf-<pid>.data --children --sort symbol
#
# LEANMOTE_PROFILED_BIN: binary to run (default: target/profiling/release/leanmote-api)
# LEANMOTE_PROFILE_DIR: folder of the perf data files (default: target/profiles)
# LEANMOTE_PROFILE_HZ: samples per second (default: 999)
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
bin=${LEANMOTE_PROFILED_BIN:-$root/target/profiling/release/leanmote-api}
if [ "${1:-}" = serve ]; then
    out=${LEANMOTE_PROFILE_DIR:-$root/target/profiles}
    mkdir -p "$out"
    exec perf record -F "${LEANMOTE_PROFILE_HZ:-999}" --call-graph dwarf,16384 -o "$out/perf-$$.data" -- "$bin" "$@"
fi
exec "$bin" "$@"
