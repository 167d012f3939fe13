#!/usr/bin/env bash
# The HTTP data plane beside its peers, one Markdown section on stdout: each component under
# `spore up` and under `wasmtime serve` (the wasmtime CLI of the version Spore embeds), the
# hello also as a native hyper server, at 1 and at 2 server threads. Every cell is measured
# in the same run, so compare the ratios.
#
#   bench/http-peers.sh WASMTIME GUEST_DIR
#
# 1 thread: the server pinned to CPU 0 with one tokio worker, wrk pinned to CPU 1.
# 2 threads: two tokio workers on both CPUs, wrk still pinned to CPU 1 (on 2 cores it shares).
set -euo pipefail
cd "$(dirname "$0")/.."
wasmtime=${1:?usage: http-peers.sh WASMTIME GUEST_DIR}
guests=${2:?guest dir}
spore=target/release/spore
duration=${BENCH_SECONDS:-10}
connections=16
port=18180
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
wrk_cpu=$(( $(nproc) > 1 ? 1 : 0 ))

cat > "$work/app.yaml" <<YAML
apiVersion: spore.dev/v1alpha1
kind: WasmApp
metadata:
  name: bench-peers
spec:
  module:
    image: localhost:5000/spore/bench:latest
  capabilities:
    network:
      inbound:
      - name: http
        port: $port
  limits:
    maxConcurrency: 64
YAML

# measure NAME THREADS CMD...: serves with CMD on $port, loads it, prints one table row.
measure() {
  local name=$1 threads=$2; shift 2
  local pin=()
  [ "$threads" = 1 ] && pin=(taskset -c 0)
  TOKIO_WORKER_THREADS=$threads "${pin[@]}" "$@" >"$work/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/" >/dev/null || { echo "bench: $name did not serve:" >&2; cat "$work/server.log" >&2; exit 1; }
  # Warm up (first requests, pools), then measure.
  taskset -c $wrk_cpu wrk -t1 -c$connections -d2s "http://127.0.0.1:$port/" >/dev/null
  local cpu0 cpu1 faults0 faults1 out
  # CPU ticks (user + system) and minor faults, before and after the load.
  read -r cpu0 faults0 < <(awk '{ print $14 + $15, $10 }' "/proc/$pid/stat")
  out=$(taskset -c $wrk_cpu wrk -t1 -c$connections -d"${duration}s" --latency "http://127.0.0.1:$port/")
  read -r cpu1 faults1 < <(awk '{ print $14 + $15, $10 }' "/proc/$pid/stat")
  local rps p50 p99 n rss errors
  rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out" | tr -s ' ' | paste -sd';')
  rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local cpu_us=$(( (cpu1 - cpu0) * 1000000 / $(getconf CLK_TCK) / (n > 0 ? n : 1) ))
  local faults=$(( (faults1 - faults0) / (n > 0 ? n : 1) ))
  echo "| $name | $threads | $rps | $p50 | $p99 | $rss | $cpu_us | $faults |${errors:+ $errors}"
  echo "$name|$threads|$rps" >>"$work/rps"
}

ratio() { # ratio A B THREADS: rps(A) / rps(B) at THREADS
  awk -F'|' -v a="$1" -v b="$2" -v t="$3" '$2 == t && $1 == a { x = $3 } $2 == t && $1 == b { y = $3 }
    END { if (x && y) printf "%.2fx", x / y; else print "n/a" }' "$work/rps"
}

rows=$work/rows
: >"$rows"
for guest in http python-http js-http; do
  wasm=$guests/$guest.wasm
  [ -f "$wasm" ] || { echo "bench: $wasm missing (make bench-guests); skipped" >&2; continue; }
  echo "bench: $guest: compiling once for wasmtime serve, warming Spore's cache" >&2
  "$wasmtime" compile -o "$work/$guest.cwasm" "$wasm"
  # Until the optimized code is cached: the first start serves on baseline code meanwhile.
  $spore up -f "$work/app.yaml" --module "$wasm" --cache-dir "$work/cache" \
    --metrics-address "127.0.0.1:$((port + 1))" >/dev/null 2>&1 &
  warming=$!
  for _ in $(seq 1200); do
    curl -sf "http://127.0.0.1:$((port + 1))/metrics" 2>/dev/null | grep -q '^spore_http_code_optimized 1' && break
    sleep 0.1
  done
  kill "$warming"; wait "$warming" 2>/dev/null || true
  for threads in 1 2; do
    echo "bench: $guest at $threads thread(s)" >&2
    measure "spore up $guest" "$threads" $spore up -f "$work/app.yaml" --module "$wasm" --cache-dir "$work/cache" >>"$rows"
    measure "wasmtime serve $guest" "$threads" "$wasmtime" serve -Scli --addr "127.0.0.1:$port" \
      --allow-precompiled "$work/$guest.cwasm" >>"$rows"
    [ "$guest" = http ] && measure "native hyper" "$threads" target/release/native-hello "127.0.0.1:$port" >>"$rows"
  done
done

cat <<MD

## HTTP data plane: Spore, \`wasmtime serve\` and native hyper

The same components served by \`spore up\` and by \`wasmtime serve -Scli\` ($("$wasmtime" --version),
the wasmtime Spore embeds, built by \`make bench\` from the cargo registry), and the hello as a
plain hyper server (\`bench/native-hello\`). Both Wasm servers instantiate a fresh instance per
request. Load: \`wrk -t1 -c$connections -d${duration}s --latency\` pinned to CPU $wrk_cpu after a 2 s
warm-up; at 1 thread the server is pinned to CPU 0 with \`TOKIO_WORKER_THREADS=1\`, at 2 it
has both CPUs (and shares one with wrk). RSS is the server's at the end of the load; CPU is
the server's user+system time per request, faults its minor page faults per request.
Components: \`tests/guests/http\` (Rust), \`tests/guests/python-http\` (componentize-py),
\`tests/guests/js-http\` (componentize-js).
Reproduce: \`bench/http-peers.sh $wasmtime target/guests\`.

| server | threads | requests/s | p50 | p99 | RSS (MB) | CPU/request (µs) | faults/request |
|---|---:|---:|---:|---:|---:|---:|---:|
$(cat "$rows")

| ratio (requests/s) | 1 thread | 2 threads |
|---|---:|---:|
| Spore / wasmtime serve, Rust hello | $(ratio "spore up http" "wasmtime serve http" 1) | $(ratio "spore up http" "wasmtime serve http" 2) |
| Spore / native hyper, Rust hello | $(ratio "spore up http" "native hyper" 1) | $(ratio "spore up http" "native hyper" 2) |
| Spore / wasmtime serve, Python | $(ratio "spore up python-http" "wasmtime serve python-http" 1) | $(ratio "spore up python-http" "wasmtime serve python-http" 2) |
| Spore / wasmtime serve, JavaScript | $(ratio "spore up js-http" "wasmtime serve js-http" 1) | $(ratio "spore up js-http" "wasmtime serve js-http" 2) |

Where the rest of the time goes, measured on 2026-12-03: in wasmtime 48 itself, so \`wasmtime serve\`
pays it too.
- The hello's fresh instance costs about 16 µs of CPU in process (\`cargo test --release
  --workspace --lib -- --ignored --nocapture request_phases\`: store 0.8, instantiate 6.8,
  handler 5.0, drop 3.4 µs), more than a whole native request (the CPU column).
- Python and JavaScript heaps dirty more than 32 separate runs of pages per request; wasmtime's
  pooling reset (\`reset_with_pagemap\`) stops its scan after 32 runs and returns the rest to the
  kernel, so the next instance faults them back (the faults column; upstream
  bytecodealliance/wasmtime#14357). With 2 threads each such fault is also a TLB shootdown to
  the other CPU: \`perf record -g\` puts 38% of the Python server's CPU in \`flush_tlb_mm_range\`
  IPIs under \`do_wp_page\`.
- componentize-py links the Python runtime from modules sharing one function table, with their
  element segments at an imported \`__table_base\`. wasmtime cannot pre-build such a table, so
  every instance initializes about 5,400 funcrefs eagerly (\`wasm-tools print\` counts 5,377),
  each with binary searches (\`CompiledFunctionsTable::func_loc\`; upstream
  bytecodealliance/wasmtime#8212): 30% of the Python server's CPU at 1 thread.
MD
