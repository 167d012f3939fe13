# Sourced by the guest build scripts: the toolchains of components in other languages,
# installed once into TOOLS (default ~/.cache/spore-tools) keyed by version, and the WIT of
# the wasmtime Spore embeds.
COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_JS_VERSION=0.23.0
TOOLS="${TOOLS:-$HOME/.cache/spore-tools}"
_TOOLCHAINS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Prints the path of componentize-py, installing it from PyPI first if needed.
componentize_py() {
  local py="$TOOLS/componentize-py-$COMPONENTIZE_PY_VERSION"
  if [[ ! -x "$py/bin/componentize-py" ]]; then
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $py" >&2
    rm -rf "$py"
    python3 -m venv "$py"
    "$py/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
  fi
  echo "$py/bin/componentize-py"
}

# Prints the path of componentize-js, installing it from npm first if needed.
componentize_js() {
  local js="$TOOLS/componentize-js-$COMPONENTIZE_JS_VERSION"
  if [[ ! -x "$js/node_modules/.bin/componentize-js" ]]; then
    echo "installing componentize-js $COMPONENTIZE_JS_VERSION into $js" >&2
    rm -rf "$js"
    mkdir -p "$js"
    (cd "$js" && npm init -y >/dev/null && npm install -s --no-audit --no-fund \
      "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >/dev/null)
  fi
  echo "$js/node_modules/.bin/componentize-js"
}

# Prints the directory of the wasmtime-wasi-http crate that Spore's Cargo.lock pins (its
# `wit/` is WASI 0.2 HTTP, its `src/p3/wit/` WASI 0.3).
wasi_http_crate() {
  cargo metadata --format-version 1 --locked --manifest-path "$_TOOLCHAINS_ROOT/Cargo.toml" \
    | python3 -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="wasmtime-wasi-http"))'
}

# needs_build OUTPUT SOURCE...: OUTPUT is missing or older than a SOURCE.
needs_build() {
  local out="$1" s; shift
  [[ -f "$out" ]] || return 0
  for s in "$@"; do [[ "$s" -nt "$out" ]] && return 0; done
  return 1
}
