#!/usr/bin/env bash
# `make fuzz`: runs the speaker's two fuzz targets (speaker/fuzz) with cargo fuzz and
# libFuzzer, each to FUZZ_RUNS executions (10 million unless set):
#   decode  the wire codec: messages, OPEN capabilities, path attributes, and a
#           decode-encode-decode round trip (one process: it is fast);
#   core    the daemon's core under fuzzed sequences of events, its invariants
#           checked after each (FUZZ_JOBS processes share the runs and a corpus).
# Each starts from the corpus kept in speaker/fuzz/corpus/<target>; what it finds
# that covers something new is merged back there, to commit. A crash stops the run:
# its input is in speaker/fuzz/artifacts/<target>/, and for the core a replay case
# (config.yaml, events.jsonl) beside it, to keep under speaker/tests/replay/.
#
# cargo fuzz needs a nightly compiler's flags: RUSTC_BOOTSTRAP=1 lets the stable one
# take them. cargo-fuzz itself is installed from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/../speaker"

RUNS=${FUZZ_RUNS:-10000000}
JOBS=${FUZZ_JOBS:-2}
CARGO_FUZZ_VERSION=0.13.2
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# No sanitizer: safe Rust, and the invariants are our own assertions. Half the
# speed goes to AddressSanitizer otherwise.
cargo fuzz build --release --sanitizer none
bin=fuzz/target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d /tmp/speaker-fuzz.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# run TARGET JOBS MAX_LEN: fuzzes TARGET in JOBS processes to RUNS executions in all.
run() {
  local target=$1 jobs=$2 max_len=$3
  local corpus=fuzz/corpus/$target artifacts=fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts" "$work/$target"
  local per=$(((RUNS + jobs - 1) / jobs)) start=$SECONDS failed=0
  pids=()
  for i in $(seq 1 "$jobs"); do
    # New inputs go to the scratch corpus (first directory); the kept one seeds.
    RUST_BACKTRACE=0 "$bin/$target" -runs="$per" -max_len="$max_len" -seed="$((RANDOM * 65536 + i))" \
      -print_final_stats=1 -artifact_prefix="$artifacts/" \
      "$work/$target" "$corpus" >"$work/$target-$i.log" 2>&1 &
    pids+=($!)
  done
  # The first to fail stops the others.
  local left=$jobs done_pid
  while [ "$left" -gt 0 ]; do
    if ! wait -n -p done_pid "${pids[@]}"; then
      failed=1
      for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
      break
    fi
    local rest=()
    for pid in "${pids[@]}"; do [ "$pid" = "$done_pid" ] || rest+=("$pid"); done
    pids=("${rest[@]}")
    left=$((left - 1))
  done
  wait 2>/dev/null || true
  pids=()
  local execs
  execs=$(awk '/stat::number_of_executed_units/ {n += $2} END {print n + 0}' "$work/$target"-*.log)
  local secs=$((SECONDS - start))
  if [ "$failed" -ne 0 ]; then
    for log in "$work/$target"-*.log; do
      grep -A1 "panicked at" "$log" || true
    done
    local crash
    crash=$(ls -t "$artifacts"/crash-* 2>/dev/null | head -1 || true)
    if [ -n "$crash" ] && [ "$target" = core ]; then
      SPEAKER_FUZZ_CASE="$crash.case" "$bin/core" "$crash" >/dev/null 2>&1 || true
      echo "fuzz: the events that broke it, as a replay case: $crash.case/"
    fi
    echo "fuzz: $target FAILED after about $execs executions in ${secs}s; input: ${crash:-see the log above}" >&2
    exit 1
  fi
  # Keep what covers something new.
  "$bin/$target" -merge=1 -max_len="$max_len" "$corpus" "$work/$target" >"$work/$target-merge.log" 2>&1
  local added
  added=$(sed -n 's/.*MERGE-OUTER: \([0-9]*\) new files.*/\1/p' "$work/$target-merge.log")
  echo "fuzz: $target clean: $execs executions in ${secs}s ($jobs process(es)); ${added:-0} inputs added to $corpus ($(ls "$corpus" | wc -l) in all)"
}

run decode 1 4096
run core "$JOBS" 512
