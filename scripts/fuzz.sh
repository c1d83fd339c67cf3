#!/usr/bin/env bash
# A short bounded fuzzing run of every target (CI), or a longer one:
#   FUZZ_SECONDS=3600 scripts/fuzz.sh [target...]
# cargo-fuzz needs nightly's -Z flags; RUSTC_BOOTSTRAP lets stable accept them.
# A crash leaves its input in fuzz/artifacts/<target>/: add it to
# fuzz/regressions/<target>/ (replayed by cargo test) and fix the bug.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-15}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
python3 fuzz/make-seeds.py
targets=("$@")
# Every target fuzz/Cargo.toml declares: a new one runs without editing this.
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -vx otel-ebpf-fuzz)
cd fuzz
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  rm -rf "artifacts/$t"
  echo "fuzz: $t for ${seconds}s"
  set +e
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    >"/tmp/fuzz-$t.log" 2>&1
  rc=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)' "/tmp/fuzz-$t.log" || true
  if [ $rc -ne 0 ]; then
    tail -40 "/tmp/fuzz-$t.log" >&2
    echo "fuzz: $t failed (exit $rc); inputs in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "fuzz: no crash in ${#targets[@]} targets"
