#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for a while each (too slow for
# .ci/run; see README.md, Testing).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target, default 60; TARGETs default to all of them. Works on
# the stable toolchain: RUSTC_BOOTSTRAP=1 lets it take the -Z flags
# cargo-fuzz passes. Extra libFuzzer flags can go in FUZZ_ARGS (e.g.
# FUZZ_ARGS="-jobs=2 -workers=2"); NICE (default 10) is the niceness the
# build and the runs get.
#
# New corpus entries go to fuzz/corpus/TARGET (seeded from the tracked
# fuzz/seeds/TARGET), crashes to fuzz/artifacts/TARGET; both are ignored by
# git. Replay a crash with:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET fuzz/artifacts/TARGET/crash-...
# The script exits non-zero if any target failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
seconds="${1:-60}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1
nice_cmd=(nice -n "${NICE:-10}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  "${nice_cmd[@]}" cargo install cargo-fuzz --locked
fi
cargo fuzz --version

cd "$root"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz")
fi

# Build and run with the same flags, so `run` reuses the build.
opts=(--fuzz-dir "$fuzz" --target-dir "$fuzz/target")
failed=()
for target in "${targets[@]}"; do
  echo "== $target: build"
  "${nice_cmd[@]}" cargo fuzz build "${opts[@]}" "$target"
  corpus="$fuzz/corpus/$target"
  mkdir -p "$corpus" "$fuzz/artifacts/$target"
  seeds=()
  [ -d "$fuzz/seeds/$target" ] && seeds=("$fuzz/seeds/$target")
  echo "== $target: ${seconds}s"
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  if ! "${nice_cmd[@]}" cargo fuzz run "${opts[@]}" "$target" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$fuzz/artifacts/$target/" ${FUZZ_ARGS:-}; then
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== failed: ${failed[*]} (reproducers in $fuzz/artifacts/)" >&2
  exit 1
fi
echo "== all fuzz targets ran ${seconds}s without a finding"
