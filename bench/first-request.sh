#!/usr/bin/env bash
# Time to the first response of a freshly started server, one Markdown section on stdout:
# each component under `spore up` and under `wasmtime serve` (the wasmtime CLI of the version
# Spore embeds), with an empty code cache and with a warm one.
#
#   bench/first-request.sh WASMTIME GUEST_DIR
#
# Spore with an empty cache answers on baseline (Winch) code and swaps in optimized
# (Cranelift) code when it is ready; "optimized after" is when its metrics said so.
# `wasmtime serve` compiles with Cranelift before it listens; warm, it loads the code
# `wasmtime compile` wrote (`--allow-precompiled`), as a user of it would.
set -euo pipefail
cd "$(dirname "$0")/.."
wasmtime=${1:?usage: first-request.sh WASMTIME GUEST_DIR}
guests=${2:?guest dir}
spore=target/release/spore
port=18280
metrics_port=18281
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/app.yaml" <<YAML
apiVersion: spore.dev/v1alpha1
kind: WasmApp
metadata:
  name: bench-first-request
spec:
  module:
    image: localhost:5000/spore/bench:latest
  capabilities:
    network:
      inbound:
      - name: http
        port: $port
YAML

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# first_response START: waits (polling every 5 ms, 120 s at most) for a 200 on $port;
# prints the seconds since START.
first_response() {
  local start=$1
  for _ in $(seq 24000); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/" && { since "$start"; return; }
    sleep 0.005
  done
  echo "bench: no response on $port" >&2
  exit 1
}

# optimized START: waits for Spore's metrics to report optimized code; seconds since START.
optimized() {
  local start=$1
  for _ in $(seq 6000); do
    curl -sf "http://127.0.0.1:$metrics_port/metrics" | grep -q '^spore_http_code_optimized 1' &&
      { since "$start"; return; }
    sleep 0.02
  done
  echo "bench: Spore never reported optimized code" >&2
  exit 1
}

stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

rows=$work/rows
: >"$rows"
for guest in http python-http js-http; do
  wasm=$guests/$guest.wasm
  [ -f "$wasm" ] || { echo "bench: $wasm missing (make bench-guests); skipped" >&2; continue; }
  size=$(awk -v b="$(stat -c %s "$wasm")" 'BEGIN { printf "%.1f", b / 1e6 }')
  echo "bench: first request of $guest" >&2

  rm -rf "$work/cache"
  start=$(now)
  $spore up -f "$work/app.yaml" --module "$wasm" --cache-dir "$work/cache" \
    --metrics-address "127.0.0.1:$metrics_port" >"$work/spore.log" 2>&1 &
  pid=$!
  spore_cold=$(first_response "$start")
  spore_optimized=$(optimized "$start")
  stop $pid
  start=$(now)
  $spore up -f "$work/app.yaml" --module "$wasm" --cache-dir "$work/cache" >"$work/spore.log" 2>&1 &
  pid=$!
  spore_warm=$(first_response "$start")
  stop $pid

  start=$(now)
  "$wasmtime" serve -Scli -C cache=n --addr "127.0.0.1:$port" "$wasm" >"$work/wasmtime.log" 2>&1 &
  pid=$!
  wasmtime_cold=$(first_response "$start")
  stop $pid
  "$wasmtime" compile -o "$work/$guest.cwasm" "$wasm"
  start=$(now)
  "$wasmtime" serve -Scli --addr "127.0.0.1:$port" --allow-precompiled "$work/$guest.cwasm" >"$work/wasmtime.log" 2>&1 &
  pid=$!
  wasmtime_warm=$(first_response "$start")
  stop $pid

  echo "| $guest ($size MB) | $spore_cold | $spore_optimized | $wasmtime_cold | $spore_warm | $wasmtime_warm |" >>"$rows"
done

cat <<MD

## First request of a freshly started server

Seconds from starting the server to its first 200 (curl polling every 5 ms), one after the
other in the same run: \`spore up\` and \`wasmtime serve -Scli\` ($("$wasmtime" --version)), with
no cached machine code and with it cached (Spore: its code cache, \`--cache-dir\`;
wasmtime: \`wasmtime compile\`'s output served with \`--allow-precompiled\`). Spore with an
empty cache answers on code from Winch (wasmtime's baseline compiler) and compiles the
optimized code with Cranelift on idle-priority threads; "optimized after" is when
\`spore_http_code_optimized\` turned 1 (from then on requests run on it). \`wasmtime serve\`
compiles with Cranelift before it listens. Reproduce: \`bench/first-request.sh $wasmtime target/guests\`.

| component | Spore, empty cache | Spore, optimized after | wasmtime serve, empty cache | Spore, warm | wasmtime serve, precompiled |
|---|---:|---:|---:|---:|---:|
$(cat "$rows")
MD
