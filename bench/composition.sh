#!/usr/bin/env bash
# Composed apps, one Markdown section on stdout: the time to link, the first response of a
# linked app with empty and warm caches, the cost of a middleware hop in requests/s, and a
# WASI 0.3 service with and without instance reuse. Every figure is measured beside its
# baseline in the same run, with `spore up`.
#
#   bench/composition.sh GUEST_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
guests=${1:?usage: composition.sh GUEST_DIR}
spore=target/release/spore
runs=${BENCH_RUNS:-10}
duration=${BENCH_SECONDS:-10}
port=18100
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for file in polyglot-handler polyglot-auth polyglot-markdown http gate2 p3-http; do
  [ -f "$guests/$file.wasm" ] || { echo "bench: $guests/$file.wasm missing (make guests)" >&2; exit 1; }
done
echo s3cret >"$work/token"
polyglot="--module $guests/polyglot-handler.wasm --component auth=$guests/polyglot-auth.wasm --component markdown=$guests/polyglot-markdown.wasm"
bearer="Authorization: Bearer s3cret"

# manifest NAME [SPEC [LIMITS]]: an HTTP app on $port; SPEC and LIMITS are YAML lines
# added to its spec and to its spec.limits.
manifest() {
  cat >"$work/$1.yaml" <<YAML
apiVersion: spore.dev/v1alpha1
kind: WasmApp
metadata:
  name: bench-$1
spec:
  module:
    image: localhost:5000/spore/bench:latest
${2:-}
  capabilities:
    network:
      inbound:
      - name: http
        port: $port
  limits:
    maxConcurrency: 64
${3:-}
YAML
}
# The example itself, on this benchmark's port.
sed "s/port: 8080/port: $port/" examples/polyglot/app.yaml >"$work/polyglot.yaml"
manifest handler-only '    plugs: [markdown]
  components:
    - name: markdown
      image: localhost:5000/spore/polyglot-markdown:latest'
manifest plain
manifest gated '  components:
    - name: gate
      image: localhost:5000/spore/gate2:latest
      env:
        - name: TOKEN
          value: s3cret
  middleware: [gate]'
manifest reuse '' '    instanceReuse:
      maxRequests: 1000000
      maxConcurrent: 64'

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# first_response START [CURL_ARGS]: seconds from START to the first 200 on $port.
first_response() {
  local start=$1; shift
  for _ in $(seq 24000); do
    curl -sf -o /dev/null "$@" "http://127.0.0.1:$port/" && { since "$start"; return; }
    sleep 0.005
  done
  echo "bench: no response on $port" >&2
  exit 1
}
# serve NAME ARGS...: starts `spore up` of manifest NAME in the background (pid in $pid).
serve() {
  local name=$1; shift
  $spore up -f "$work/$name.yaml" "$@" >"$work/$name.log" 2>&1 &
  pid=$!
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
rps() { # load of GET / for $duration s; extra args go to wrk
  wrk -t1 -c16 -d"${duration}s" "$@" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ { print $2 }'
}
ratio() { python3 -c "print('%.0f%%' % (100 * $1 / $2))"; }

echo "bench: linking the polyglot app (spore validate, $runs runs)" >&2
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/link.json" \
  -n linked "$spore validate -f $work/polyglot.yaml $polyglot" \
  -n alone "$spore validate -f $work/plain.yaml" >&2
link_ms() { python3 -c "import json,sys; r={x['command']: x for x in json.load(open(sys.argv[1]))['results']}; print('%.0f' % (r[sys.argv[2]]['mean'] * 1000))" "$work/link.json" "$1"; }
link_linked=$(link_ms linked); link_alone=$(link_ms alone)

echo "bench: first response of the polyglot app, empty and warm caches" >&2
first_of() { # NAME CACHE CURL_ARGS... (spore args in $spore_args)
  local name=$1 cache=$2; shift 2
  local start; start=$(now)
  # shellcheck disable=SC2086
  serve "$name" $spore_args --cache-dir "$cache" --volume "token=$work"
  first_response "$start" "$@"
  stop
}
spore_args=$polyglot
poly_cold=$(rm -rf "$work/c1"; first_of polyglot "$work/c1" -H "$bearer")
poly_warm=$(first_of polyglot "$work/c1" -H "$bearer")
spore_args="--module $guests/python-http.wasm"
if [ -f "$guests/python-http.wasm" ]; then
  py_cold=$(rm -rf "$work/c2"; first_of plain "$work/c2")
  py_warm=$(first_of plain "$work/c2")
else
  py_cold="n/a (make bench-guests)"; py_warm="n/a"
fi

echo "bench: requests/s with and without a middleware (${duration}s each, wrk -t1 -c16)" >&2
serve polyglot $polyglot --cache-dir "$work/c1" --volume "token=$work"
first_response "$(now)" -H "$bearer" >/dev/null
poly_mw=$(rps -H "$bearer"); stop
serve handler-only --module "$guests/polyglot-handler.wasm" --component "markdown=$guests/polyglot-markdown.wasm" --cache-dir "$work/c1"
first_response "$(now)" >/dev/null
poly_alone=$(rps); stop
serve gated --module "$guests/http.wasm" --component "gate=$guests/gate2.wasm" --cache-dir "$work/c1"
first_response "$(now)" -H "$bearer" >/dev/null
gate_mw=$(rps -H "$bearer"); stop
serve plain --module "$guests/http.wasm" --cache-dir "$work/c1"
first_response "$(now)" >/dev/null
gate_alone=$(rps); stop

echo "bench: a WASI 0.3 service with and without instance reuse" >&2
serve plain --module "$guests/p3-http.wasm" --cache-dir "$work/c1"
first_response "$(now)" >/dev/null
fresh=$(rps); stop
serve reuse --module "$guests/p3-http.wasm" --cache-dir "$work/c1"
first_response "$(now)" >/dev/null
reused=$(rps); stop

cat <<MD

## Composed apps: linking, first response, the middleware hop, instance reuse

\`examples/polyglot\` links three components (Rust middleware $(du -k "$guests/polyglot-auth.wasm" | cut -f1) kB,
Python handler $(du -k "$guests/polyglot-handler.wasm" | cut -f1) kB, JavaScript library $(du -k "$guests/polyglot-markdown.wasm" | cut -f1) kB) into one app with wac-graph. All with
\`spore up\`/\`spore validate\` on this machine, each figure beside its baseline in one run;
reproduce with \`bench/composition.sh target/guests\`.

Linking: \`spore validate\` of the polyglot manifest (reads the three files and links them;
hyperfine, $runs runs) against \`spore validate\` of a one-component manifest (parses only).

| case | mean (ms) |
|---|---:|
| validate + link polyglot | $link_linked |
| validate alone | $link_alone |

First response (s) from starting \`spore up\` to the first 200, with empty caches (link,
then answer on baseline code) and warm ones (the linked app and its machine code from the
cache): the composed app beside a Python handler of the same toolchain alone
(\`python-http.wasm\`).

| app | empty cache | warm cache |
|---|---:|---:|
| polyglot (3 components, via the middleware) | $poly_cold | $poly_warm |
| python-http alone | $py_cold | $py_warm |

Requests/s (\`wrk -t1 -c16 -d${duration}s\`, GET /) through a middleware and without it: the
polyglot handler behind \`auth\` (WASI 0.3) and alone (with its library), and the 0.2 hello
\`http.wasm\` behind the 0.2 gate \`gate2.wasm\` and alone.

| app | with middleware | without | ratio |
|---|---:|---:|---:|
| polyglot handler, 0.3 \`auth\` | $poly_mw | $poly_alone | $(ratio "$poly_mw" "$poly_alone") |
| \`http.wasm\`, 0.2 \`gate2\` | $gate_mw | $gate_alone | $(ratio "$gate_mw" "$gate_alone") |

A WASI 0.3 service (\`p3-http.wasm\`, GET /) with a fresh instance per request (the
default) and with \`limits.instanceReuse\` (1M requests, 64 at once per instance):

| p3-http | requests/s |
|---|---:|
| fresh instance per request | $fresh |
| instanceReuse | $reused |
| **reuse / fresh** | **$(ratio "$reused" "$fresh")** |
MD
