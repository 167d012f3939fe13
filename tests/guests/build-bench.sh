#!/usr/bin/env bash
# Build the benchmark's big guests, components of interpreted languages, into OUT_DIR:
#   python-http.wasm   tests/guests/python-http/app.py by componentize-py (PyPI), ~18 MB
#   js-http.wasm       tests/guests/js-http/app.js by componentize-js (npm), ~13 MB
# The toolchains are installed once into TOOLS (default ~/.cache/spore-tools), keyed by version
# (tests/guests/toolchains.sh).
#
# Usage: tests/guests/build-bench.sh OUT_DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:?usage: $0 OUT_DIR}"
mkdir -p "$OUT"
source "$HERE/toolchains.sh"
log() { echo "bench-guests: $*" >&2; }

# The wasi:http WIT that wasmtime-wasi-http (the version Spore embeds) implements.
WIT="$(wasi_http_crate)/wit"
HTTP_VERSION="$(sed -n 's/^package wasi:http@\(.*\);/\1/p' "$WIT/deps/http.wit")"
py="$(componentize_py)"
js="$(componentize_js)"

if needs_build "$OUT/python-http.wasm" "$HERE/python-http/app.py" "$0"; then
  log "componentize-py: python-http.wasm (wasi:http/proxy@$HTTP_VERSION)"
  work="$(mktemp -d)"
  (cd "$work" && "$py" -d "$WIT" -w "wasi:http/proxy@$HTTP_VERSION" componentize \
    -p "$HERE/python-http" app -o "$work/python-http.wasm" >/dev/null)
  mv "$work/python-http.wasm" "$OUT/python-http.wasm"
  rm -rf "$work"
fi

if needs_build "$OUT/js-http.wasm" "$HERE/js-http/app.js" "$0"; then
  # componentize-js embeds StarlingMonkey, built against wasi:http 0.2.10, whose WIT no
  # registry here carries. Later 0.2 releases only add items, so the same WIT relabeled
  # 0.2.10 (its newer stable items marked 0.2.10, unstable ones left gated) describes it.
  js_http=0.2.10
  log "componentize-js: js-http.wasm (wasi:http/proxy@$js_http)"
  work="$(mktemp -d)"
  cp -r "$WIT" "$work/wit"
  chmod -R u+w "$work/wit"
  sed -i -E "s/@$HTTP_VERSION/@$js_http/g; s/@since\(version = 0\.2\.[0-9]+\)/@since(version = 0.2.0)/g" \
    "$work/wit/world.wit" "$work/wit"/deps/*.wit
  "$js" --wit "$work/wit" --world-name "wasi:http/proxy@$js_http" \
    --out "$work/js-http.wasm" "$HERE/js-http/app.js" >/dev/null
  mv "$work/js-http.wasm" "$OUT/js-http.wasm"
  rm -rf "$work"
fi
log "done: $OUT"
