#!/usr/bin/env bash
# Build the polyglot example's three components into OUT_DIR:
#   polyglot-auth.wasm      auth/ (Rust, wit-bindgen): the wasi:http 0.3 middleware
#   polyglot-handler.wasm   handler/app.py (Python, componentize-py): the wasi:http 0.3 service
#   polyglot-markdown.wasm  markdown/render.js (JavaScript, componentize-js): the library
# Each is built against the WIT of the wasmtime Spore embeds (from the cargo registry).
#
# Usage: examples/polyglot/build.sh OUT_DIR   (GUEST_TARGET_DIR: cargo's target dir)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "${1:?usage: $0 OUT_DIR}"
OUT="$(cd "$1" && pwd)"
TARGET_DIR="${GUEST_TARGET_DIR:-$(dirname "$OUT")/guest-target}"
source "$HERE/../../tests/guests/toolchains.sh"
log() { echo "polyglot: $*" >&2; }

P3_WIT="$(wasi_http_crate)/src/p3/wit/deps"
# stage_wit DIR: DIR/deps gets the WASI 0.3 WIT (the host's) and spore:markdown.
stage_wit() {
  mkdir -p "$1/deps"
  cp "$P3_WIT"/*.wit "$HERE/markdown/wit/markdown.wit" "$1/deps/"
}

stage_wit "$HERE/auth/wit"
log "cargo build auth --target wasm32-wasip2"
(cd "$HERE/auth" && cargo build --quiet --release --locked --target wasm32-wasip2 --target-dir "$TARGET_DIR")
# Replaced only when it changed, so that what depends on it is not redone.
cmp -s "$TARGET_DIR/wasm32-wasip2/release/auth.wasm" "$OUT/polyglot-auth.wasm" \
  || cp "$TARGET_DIR/wasm32-wasip2/release/auth.wasm" "$OUT/polyglot-auth.wasm"

if needs_build "$OUT/polyglot-handler.wasm" "$HERE/handler/app.py" "$HERE/handler/wit/world.wit" "$HERE/markdown/wit/markdown.wit" "$0"; then
  py="$(componentize_py)"
  log "componentize-py: polyglot-handler.wasm"
  work="$(mktemp -d)"
  cp "$HERE/handler/wit/world.wit" "$work/" && stage_wit "$work"
  (cd "$work" && "$py" -d "$work" -w spore:hello/handler componentize -p "$HERE/handler" app \
    -o "$work/out.wasm" >/dev/null)
  mv "$work/out.wasm" "$OUT/polyglot-handler.wasm"
  rm -rf "$work"
fi

if needs_build "$OUT/polyglot-markdown.wasm" "$HERE/markdown/render.js" "$HERE/markdown/wit/markdown.wit" "$0"; then
  js="$(componentize_js)"
  log "componentize-js: polyglot-markdown.wasm"
  work="$(mktemp -d)"
  # A pure library: none of StarlingMonkey's WASI features (stdio, clocks, http...).
  "$js" --wit "$HERE/markdown/wit" --world-name library -d stdio random clocks http fetch-event \
    -o "$work/out.wasm" "$HERE/markdown/render.js" >/dev/null
  mv "$work/out.wasm" "$OUT/polyglot-markdown.wasm"
  rm -rf "$work"
fi
log "done: $OUT"
