# Sourced by every script: repo root and the tool paths .ci/build-worker uses (all from
# registries: there is no GitHub access here, see README "Toolchain").
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$ROOT/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="$CARGO_BIN/wasm-bindgen"
export ESBUILD_BIN="$ROOT/node_modules/esbuild/bin/esbuild"
# wasm-opt: a wrapper that optimises only with EDGELAYER_OPTIMIZE=1 (deploys, benchmarks).
export WASM_OPT_BIN="$ROOT/.ci/wasm-opt"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_NO_UPDATE_CHECK=true

# The version of a package in Cargo.lock.
locked_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
