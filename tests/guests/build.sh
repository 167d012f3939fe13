#!/usr/bin/env bash
# Build Spore's test guest programs and copy them into OUT_DIR.
#
# Usage: tests/guests/build.sh OUT_DIR [http]
#
# With `http`, builds only http.wasm (what `make run` serves), which needs only rustup's
# wasm32-wasip2 target.
#
# Produces (in OUT_DIR):
#   hello-c.wasm       C hello world, wasm32-wasi core module
#   hello-c-native     the same hello.c as a native static binary
#   probe-c.wasm       C probe, wasm32-wasi (preview1) core module
#   probe-rs-p1.wasm   Rust probe, wasm32-wasip1 core module
#   probe-rs-p2.wasm   Rust probe, wasm32-wasip2 wasi:cli/command component
#   http.wasm          Rust wasi:http/proxy component (wasm32-wasip2)
#   p3-command.wasm    Rust wasi:cli/command@0.3.0 probe component (WASI 0.3)
#   p3-http.wasm       Rust wasi:http/service@0.3.0 component (WASI 0.3)
#   reach-lib.wasm     Rust library component exporting spore:reach/probe (composition)
#   reach-app.wasm     Rust wasi:cli command importing spore:reach/probe (composition)
#   reach3-lib.wasm    the same library for WASI 0.3 (spore:reach/probe-async)
#   reach3-app.wasm    the same command for WASI 0.3 (wasi:cli/command@0.3.0)
#   gate2.wasm         Rust wasi:http 0.2 bearer-token middleware (gate and forward)
#   polyglot-*.wasm    examples/polyglot: Rust middleware, Python handler, JS library
#                      (examples/polyglot/build.sh; installs componentize-py and -js)
#
# Requirements: clang + lld + wasi-libc + libclang-rt-dev-wasm32 (Debian),
# a native cc able to link -static (libc6-dev), and rustup with the
# wasm32-wasip1 and wasm32-wasip2 targets.
#
# Environment (all optional):
#   GUEST_TARGET_DIR   cargo target dir for the Rust guests
#                      (default: OUT_DIR/../guest-target)
#   CARGO_NET_OFFLINE  set to "true" to build without touching the network
#                      (standard cargo variable; needs the crates already in
#                      ~/.cargo/registry, e.g. from a previous build)
#   WASM_CC            C compiler for wasm (default: clang)
#   NATIVE_CC          C compiler for the native binary (default: cc)
#
# Idempotent: C outputs are rebuilt only when their source (or this script)
# changed, cargo does its own incremental caching, and files in OUT_DIR are
# only replaced when their content changed.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || ( $# -eq 2 && "$2" != http ) ]]; then
    echo "usage: $0 OUT_DIR [http]" >&2
    exit 2
fi
ONLY="${2:-}"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
TARGET_DIR="${GUEST_TARGET_DIR:-$(dirname "$OUT")/guest-target}"
mkdir -p "$TARGET_DIR"
TARGET_DIR="$(cd "$TARGET_DIR" && pwd)"
WASM_CC="${WASM_CC:-clang}"
NATIVE_CC="${NATIVE_CC:-cc}"
C_OBJ="$TARGET_DIR/c"
mkdir -p "$C_OBJ"

log() { echo "guests: $*" >&2; }

# install SRC NAME: copy SRC to OUT/NAME if the content differs.
install_out() {
    local src="$1" dst="$OUT/$2"
    if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then
        return
    fi
    cp "$src" "$dst.tmp.$$"
    mv -f "$dst.tmp.$$" "$dst"
    log "updated $dst"
}

# needs_build OUTPUT SOURCE...: true if OUTPUT is missing or older than any
# SOURCE or this script.
needs_build() {
    local out="$1"; shift
    [[ -f "$out" ]] || return 0
    local s
    for s in "$@" "${BASH_SOURCE[0]}"; do
        [[ "$s" -nt "$out" ]] && return 0
    done
    return 1
}

# --- The HTTP guest alone (make run) -----------------------------------------
if [[ "$ONLY" == http ]]; then
    (cd "$HERE/http" && cargo build --quiet --release --locked --target wasm32-wasip2 --target-dir "$TARGET_DIR")
    install_out "$TARGET_DIR/wasm32-wasip2/release/http.wasm" http.wasm
    exit 0
fi

# --- C guests ---------------------------------------------------------------
WASM_CFLAGS=(--target=wasm32-wasi -O2 -Wall -Wextra -Wl,--strip-debug)

if needs_build "$C_OBJ/hello-c.wasm" "$HERE/c/hello.c"; then
    log "building hello-c.wasm"
    "$WASM_CC" "${WASM_CFLAGS[@]}" "$HERE/c/hello.c" -o "$C_OBJ/hello-c.wasm"
fi
if needs_build "$C_OBJ/hello-c-native" "$HERE/c/hello.c"; then
    log "building hello-c-native"
    "$NATIVE_CC" -O2 -static -Wall "$HERE/c/hello.c" -o "$C_OBJ/hello-c-native"
fi
if needs_build "$C_OBJ/probe-c.wasm" "$HERE/c/probe.c"; then
    log "building probe-c.wasm"
    "$WASM_CC" "${WASM_CFLAGS[@]}" "$HERE/c/probe.c" -o "$C_OBJ/probe-c.wasm"
fi
install_out "$C_OBJ/hello-c.wasm" hello-c.wasm
install_out "$C_OBJ/hello-c-native" hello-c-native
install_out "$C_OBJ/probe-c.wasm" probe-c.wasm

# --- Rust guests ------------------------------------------------------------
SYSROOT="$(rustc --print sysroot)"
for t in wasm32-wasip1 wasm32-wasip2; do
    if [[ ! -d "$SYSROOT/lib/rustlib/$t" ]]; then
        log "rust target $t missing, trying: rustup target add $t"
        rustup target add "$t"
    fi
done

cargo_build() { # MANIFEST_DIR TARGET
    log "cargo build $(basename "$1") --target $2"
    (cd "$1" && cargo build --quiet --release --locked --target "$2" \
        --target-dir "$TARGET_DIR")
}

# Both crates share one target dir; they have disjoint dependencies.
cargo_build "$HERE/probe-rs" wasm32-wasip1
cargo_build "$HERE/probe-rs" wasm32-wasip2
cargo_build "$HERE/http" wasm32-wasip2
cargo_build "$HERE/p3-command" wasm32-wasip2
cargo_build "$HERE/p3-http" wasm32-wasip2
# gate2 is built against the WASI 0.2 WIT of the wasmtime Spore embeds.
source "$HERE/toolchains.sh"
mkdir -p "$HERE/compose/gate2/wit/deps"
cp "$(wasi_http_crate)"/wit/deps/*.wit "$HERE/compose/gate2/wit/deps/"
cargo_build "$HERE/compose" wasm32-wasip2

install_out "$TARGET_DIR/wasm32-wasip1/release/probe.wasm" probe-rs-p1.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/probe.wasm" probe-rs-p2.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/http.wasm" http.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/p3_command.wasm" p3-command.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/p3_http.wasm" p3-http.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/reach_lib.wasm" reach-lib.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/reach_app.wasm" reach-app.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/reach3_lib.wasm" reach3-lib.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/reach3_app.wasm" reach3-app.wasm
install_out "$TARGET_DIR/wasm32-wasip2/release/gate2.wasm" gate2.wasm

GUEST_TARGET_DIR="$TARGET_DIR" "$HERE/../../examples/polyglot/build.sh" "$OUT"

log "done: $OUT"
