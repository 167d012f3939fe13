#!/usr/bin/env bash
# A three-node Kubernetes cluster on this machine, from binaries built from source, as plain
# processes (no kind, no Docker):
#
#   e2e/cluster.sh up      PKI, etcd, kube-apiserver, controller-manager, scheduler, kube-proxy,
#                          a loopback registry, and three nodes (each a kubelet with its own
#                          Debian containerd): node-container (runc), node-wasm and node-wasm2
#                          (runc and Spore's shim). Writes $E2E_DIR/kubeconfig.
#   e2e/cluster.sh down    stops every process it started, removes its mounts, links, iptables
#                          rules and state. Safe to run twice, and after a failed `up`.
#
# Needs root. `make cluster-up` passes the binaries: K8S_DIR (kube-*), ETCD, CRICTL, and IMAGES
# (the image tars e2e-images wrote). No node has Spore's runtime until a WasmRuntime installs
# it (the e2e tests `helm install` the chart); each node's containerd runs under a restart loop
# and imports drop-ins from its conf.d, as the installer expects of a real node.
#
# Addresses (all in 198.18.0.0/15, nothing routed off the machine): the control plane on
# 198.18.0.1 and the nodes on .2/.3/.4 (on lo); pods on bridges 198.18.16.0/24
# (node-container), 198.18.17.0/24 (node-wasm) and 198.18.18.0/24 (node-wasm2); Services in
# 198.19.0.0/16 (room for 65k, for scale tests), cluster DNS (CoreDNS, cluster.local only) on
# 198.19.0.10. A node whose kubelet stops is NotReady after 20 s and its pods are evicted 15 s
# later (defaults: 40 s and 300 s), so node-loss tests take a minute, not six.
set -euo pipefail

E2E_DIR=${E2E_DIR:-/var/tmp/spore-e2e}
HOST_IP=198.18.0.1
CLUSTER_CIDR=198.18.16.0/22
SERVICE_CIDR=198.19.0.0/16
KUBERNETES_SVC_IP=198.19.0.1
DNS_SVC_IP=198.19.0.10
API_PORT=6443
ETCD_PORT=23790
REGISTRY_ADDR=127.0.0.1:5010
REGISTRY=localhost:5010
PAUSE_IMAGE=$REGISTRY/spore/pause:1
# Pods per node: few for the tests, more for the density benchmark (make bench-cluster).
MAX_PODS=${MAX_PODS:-40}
NODES=(node-container node-wasm node-wasm2)

declare -A NODE_IP=([node-container]=198.18.0.2 [node-wasm]=198.18.0.3 [node-wasm2]=198.18.0.4)
declare -A NODE_SUBNET=([node-container]=198.18.16.0/24 [node-wasm]=198.18.17.0/24 [node-wasm2]=198.18.18.0/24)
declare -A NODE_BRIDGE=([node-container]=spore-e2e-c [node-wasm]=spore-e2e-w [node-wasm2]=spore-e2e-w2)
declare -A NODE_KIND=([node-container]=container [node-wasm]=wasm [node-wasm2]=wasm)
declare -A KUBELET_PORT=([node-container]=10250 [node-wasm]=10260 [node-wasm2]=10270)
declare -A KUBELET_HEALTHZ=([node-container]=10248 [node-wasm]=10258 [node-wasm2]=10268)

PKI=$E2E_DIR/pki
LOGS=$E2E_DIR/logs
PIDS=$E2E_DIR/pids

log() { echo "e2e: $*" >&2; }

# fail COMPONENT MESSAGE: names the component and shows the end of its log.
fail() {
  local component=$1
  shift
  echo "e2e: $component: $*" >&2
  if [ -f "$LOGS/$component.log" ]; then
    echo "--- last 30 lines of $LOGS/$component.log ---" >&2
    tail -n 30 "$LOGS/$component.log" >&2
  fi
  exit 1
}

need() {
  local var=$1
  [ -n "${!var:-}" ] || { echo "e2e: $var is not set (run through make cluster-up)" >&2; exit 2; }
}

# start NAME COMMAND...: runs a component in the background in its own session, logging to
# $LOGS/NAME.log; its PID goes to $PIDS/NAME.
start() {
  local name=$1
  shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name"
}

# supervise NAME COMMAND...: like start, but restarts COMMAND whenever it exits, as systemd
# would: Spore's node installer restarts containerd by signalling it. TERM stops both.
supervise() {
  local name=$1
  shift
  # shellcheck disable=SC2016 # expanded by the inner shell
  start "$name" bash -c 'trap "kill -TERM \$child 2>/dev/null; wait \$child; exit 0" TERM INT
    while :; do "$@" & child=$!; wait $child; echo "supervisor: $1 exited ($?); restarting"; sleep 0.5; done' supervise "$@"
}

# wait_for COMPONENT SECONDS COMMAND...: until COMMAND succeeds, failing with the component's
# log if it exits or the time is up.
wait_for() {
  local component=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$PIDS/$component" ] && ! kill -0 "$(cat "$PIDS/$component")" 2>/dev/null; then
      fail "$component" "exited during startup"
    fi
    [ $SECONDS -lt $deadline ] || fail "$component" "not ready after ${seconds}s"
    sleep 0.2
  done
}

kubectl_admin() { kubectl --kubeconfig "$E2E_DIR/kubeconfig" "$@"; }

# --- PKI -------------------------------------------------------------------------------------

# cert NAME CN ORG SANS: a key and a certificate signed by the cluster CA (client and server
# use; SANS is an openssl subjectAltName list or empty).
cert() {
  local name=$1 cn=$2 org=$3 sans=$4 subject="/CN=$2"
  [ -n "$org" ] && subject="/O=$org/CN=$cn"
  local ext="extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  [ -n "$sans" ] && ext="$ext
subjectAltName=$sans"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "$subject" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -extfile <(echo "$ext") -out "$PKI/$name.crt" 2>/dev/null
}

# kubeconfig NAME: a kubeconfig for certificate NAME, embedding everything.
kubeconfig() {
  local name=$1 file=$E2E_DIR/$1.kubeconfig
  kubectl config --kubeconfig "$file" set-cluster e2e --server "https://$HOST_IP:$API_PORT" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig "$file" set-credentials "$name" --client-certificate "$PKI/$name.crt" \
    --client-key "$PKI/$name.key" --embed-certs >/dev/null
  kubectl config --kubeconfig "$file" set-context e2e --cluster e2e --user "$name" >/dev/null
  kubectl config --kubeconfig "$file" use-context e2e >/dev/null
}

make_pki() {
  log "generating PKI"
  mkdir -p "$PKI"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 30 \
    -subj /CN=spore-e2e-ca -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key"
  openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  cert apiserver kube-apiserver "" \
    "IP:$HOST_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
  cert admin admin system:masters ""
  cert controller-manager system:kube-controller-manager "" ""
  cert scheduler system:kube-scheduler "" ""
  cert kube-proxy system:kube-proxy "" ""
  for node in "${NODES[@]}"; do
    cert "$node" "system:node:$node" system:nodes ""
  done
  for name in admin controller-manager scheduler kube-proxy "${NODES[@]}"; do
    kubeconfig "$name"
  done
  mv "$E2E_DIR/admin.kubeconfig" "$E2E_DIR/kubeconfig"
}

# --- host network ----------------------------------------------------------------------------

# The control plane's and the nodes' addresses live on loopback (this kernel has no dummy
# links); a route keeps ClusterIP traffic on the machine even when no rule rewrites it.
setup_network() {
  log "network: $HOST_IP and the node IPs on lo; ip_forward and bridge netfilter on"
  for ip in $(host_ips); do
    ip addr add "$ip/32" dev lo
  done
  ip route add "$SERVICE_CIDR" dev lo
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
}

host_ips() {
  echo "$HOST_IP"
  for node in "${NODES[@]}"; do echo "${NODE_IP[$node]}"; done
}

# --- registry and images ---------------------------------------------------------------------

start_registry() {
  log "registry on $REGISTRY_ADDR"
  mkdir -p "$E2E_DIR/registry"
  cat >"$E2E_DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $E2E_DIR/registry/data
http:
  addr: $REGISTRY_ADDR
EOF
  start registry docker-registry serve "$E2E_DIR/registry/config.yml"
  wait_for registry 20 curl -sf "http://$REGISTRY_ADDR/v2/"
}

# Pushes every image of $IMAGES/images.txt (NAME FILE lines) to the registry, through
# node-container's containerd.
push_images() {
  local node=node-container name tar
  while read -r name tar; do
    ctr_node "$node" -n e2e-push images import --all-platforms "$tar" >/dev/null ||
      fail "containerd-$node" "importing $tar failed"
    ctr_node "$node" -n e2e-push images push --plain-http "$name" >/dev/null ||
      fail "containerd-$node" "pushing $name to the registry failed"
    log "pushed $name"
  done <"$IMAGES/images.txt"
}

# --- control plane ---------------------------------------------------------------------------

start_etcd() {
  log "etcd"
  start etcd "$ETCD" --name e2e --data-dir "$E2E_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster e2e=http://127.0.0.1:23800 --listen-metrics-urls http://127.0.0.1:23810 \
    --unsafe-no-fsync
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
}

# --request-timeout also bounds a graceful shutdown, which waits for HTTP/1.1 watches (kube-rs
# clients) to end: 15 s instead of 60 for the apiserver restart of the fault tests.
start_apiserver() {
  log "kube-apiserver on https://$HOST_IP:$API_PORT"
  start kube-apiserver "$K8S_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true --profiling=false \
    --default-not-ready-toleration-seconds 15 --default-unreachable-toleration-seconds 15 \
    --request-timeout 15s
  wait_for kube-apiserver 90 kubectl_admin get --raw /readyz
}

start_controllers() {
  log "kube-controller-manager, kube-scheduler"
  local cm=$E2E_DIR/controller-manager.kubeconfig sched=$E2E_DIR/scheduler.kubeconfig
  start kube-controller-manager "$K8S_DIR/kube-controller-manager" \
    --kubeconfig "$cm" --authentication-kubeconfig "$cm" --authorization-kubeconfig "$cm" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true --leader-elect=false --node-monitor-grace-period 20s \
    --bind-address 127.0.0.1 --secure-port 10357
  start kube-scheduler "$K8S_DIR/kube-scheduler" \
    --kubeconfig "$sched" --authentication-kubeconfig "$sched" --authorization-kubeconfig "$sched" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 10359
  wait_for kube-controller-manager 60 curl -sfk https://127.0.0.1:10357/healthz
  wait_for kube-scheduler 60 curl -sfk https://127.0.0.1:10359/healthz
}

start_kube_proxy() {
  log "kube-proxy (iptables)"
  cat >"$E2E_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $E2E_DIR/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: node-container
nodePortAddresses: [primary]
metricsBindAddress: 127.0.0.1:10349
healthzBindAddress: 127.0.0.1:10356
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  start kube-proxy "$K8S_DIR/kube-proxy" --config "$E2E_DIR/kube-proxy.yaml"
  wait_for kube-proxy 30 curl -sf http://127.0.0.1:10356/healthz
}

# --- nodes -----------------------------------------------------------------------------------

ctr_node() {
  local node=$1
  shift
  ctr --address "$E2E_DIR/$node/containerd/containerd.sock" "$@"
}

containerd_config() {
  local node=$1 dir=$E2E_DIR/$1/containerd
  cat <<EOF
# Drop-ins (Spore's installer writes one) are read from conf.d, as distributions set it up.
imports = ["$dir/conf.d/*.toml"]
version = 2
root = "$dir/root"
state = "$dir/state"

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # No CAP_SYS_RESOURCE on our VMs: runc cannot lower oom_score_adj below containerd's own.
  restrict_oom_score_adj = true

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  Root = "$dir/runc"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$E2E_DIR/$node/cni"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "$E2E_DIR/$node/certs.d"
EOF
}

cni_config() {
  local node=$1
  cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "spore-e2e-$node",
  "plugins": [
    {"type": "bridge", "bridge": "${NODE_BRIDGE[$node]}", "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "${NODE_SUBNET[$node]}"}]]}},
    {"type": "loopback"}
  ]
}
EOF
}

kubelet_config() {
  local node=$1 dir=$E2E_DIR/$1
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
address: ${NODE_IP[$node]}
port: ${KUBELET_PORT[$node]}
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ[$node]}
readOnlyPort: 0
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
podLogsDir: $dir/pod-logs
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
resolvConf: $E2E_DIR/resolv.conf
clusterDomain: cluster.local
clusterDNS: [$DNS_SVC_IP]
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: $MAX_PODS
EOF
}

start_node() {
  local node=$1 dir=$E2E_DIR/$1
  log "$node: containerd and kubelet (${NODE_IP[$node]}, pods ${NODE_SUBNET[$node]})"
  mkdir -p "$dir/containerd" "$dir/cni" "$dir/kubelet" "$dir/pod-logs" "$dir/certs.d/$REGISTRY"
  mkdir -p "$dir/containerd/conf.d"
  containerd_config "$node" >"$dir/containerd/config.toml"
  # What the tests compare against: the installer must never change the main config.
  cp "$dir/containerd/config.toml" "$dir/containerd/config.toml.at-start"
  cni_config "$node" >"$dir/cni/10-spore-e2e.conflist"
  cat >"$dir/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
  supervise "containerd-$node" env SPORE_CACHE_DIR="$dir/code-cache" \
    containerd --config "$dir/containerd/config.toml"
  wait_for "containerd-$node" 30 ctr_node "$node" version
  ctr_node "$node" -n k8s.io images import --all-platforms "$IMAGES/pause.tar" >/dev/null ||
    fail "containerd-$node" "importing the pause image failed"

  kubelet_config "$node" >"$dir/kubelet.yaml"
  start "kubelet-$node" "$K8S_DIR/kubelet" --config "$dir/kubelet.yaml" \
    --kubeconfig "$E2E_DIR/$node.kubeconfig" --hostname-override "$node" --node-ip "${NODE_IP[$node]}" \
    --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" \
    --node-labels "spore.dev/node-kind=${NODE_KIND[$node]}"
}

# CoreDNS for cluster.local on $DNS_SVC_IP (no upstream: nothing outside the cluster resolves).
start_dns() {
  log "CoreDNS on $DNS_SVC_IP"
  dns_objects | kubectl_admin apply -f - >/dev/null || fail kube-apiserver "applying the CoreDNS objects failed"
  if ! kubectl_admin -n kube-system rollout status deployment/coredns --timeout=90s >"$LOGS/coredns.log" 2>&1; then
    kubectl_admin -n kube-system logs deployment/coredns >>"$LOGS/coredns.log" 2>&1 || true
    kubectl_admin -n kube-system describe pods -l k8s-app=kube-dns >>"$LOGS/coredns.log" 2>&1 || true
    fail coredns "not ready after 90s"
  fi
}

dns_objects() {
  cat <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      nodeSelector: {spore.dev/node-kind: container}
      containers:
      - name: coredns
        image: $REGISTRY/spore/coredns:1
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 1
        volumeMounts: [{name: config, mountPath: /etc/coredns}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_SVC_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

wait_nodes_ready() {
  for node in "${NODES[@]}"; do
    wait_for "kubelet-$node" 120 kubectl_admin wait --for=condition=Ready "node/$node" --timeout=1s
  done
  wait_for kube-controller-manager 60 kubectl_admin get serviceaccount default
}

up() {
  need K8S_DIR
  need ETCD
  need IMAGES
  [ "$(id -u)" = 0 ] || { echo "e2e: cluster.sh needs root" >&2; exit 2; }
  if [ -d "$E2E_DIR" ]; then
    log "a previous cluster's state is in $E2E_DIR: tearing it down first"
    down
  fi
  mkdir -p "$E2E_DIR" "$LOGS" "$PIDS"
  : >"$E2E_DIR/resolv.conf"
  record_preexisting_iptables
  make_pki
  setup_network
  start_registry
  start_etcd
  start_apiserver
  start_controllers
  for node in "${NODES[@]}"; do
    start_node "$node"
  done
  push_images
  wait_nodes_ready
  # After the nodes: kube-proxy waits for its Node object before it programs rules.
  start_kube_proxy
  start_dns
  log "cluster up: export KUBECONFIG=$E2E_DIR/kubeconfig"
  kubectl_admin get nodes -o wide
}

# --- teardown --------------------------------------------------------------------------------

# stop NAME: TERM, then KILL after 10 s, of the process recorded in $PIDS/NAME.
stop() {
  local pidfile=$PIDS/$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

remove_pods() {
  local node=$1 sock=$E2E_DIR/$1/containerd/containerd.sock
  [ -S "$sock" ] || return 0
  "${CRICTL:-crictl}" --runtime-endpoint "unix://$sock" --timeout 20s rmp --all --force >/dev/null 2>&1 || true
}

# The chains kubelets add (kube-proxy --cleanup removes kube-proxy's). Only when this
# cluster added them: $E2E_DIR/iptables-preexisting records a host that had them before.
KUBELET_CHAINS=(KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT)

record_preexisting_iptables() {
  if iptables -S KUBE-KUBELET-CANARY >/dev/null 2>&1; then
    touch "$E2E_DIR/iptables-preexisting"
  fi
}

remove_kubelet_iptables() {
  [ ! -f "$E2E_DIR/iptables-preexisting" ] || return 0
  local cmd table chain
  for cmd in iptables ip6tables; do
    for chain in INPUT OUTPUT; do
      while $cmd -D "$chain" -j KUBE-FIREWALL 2>/dev/null; do :; done
    done
    for table in filter nat mangle; do
      for chain in "${KUBELET_CHAINS[@]}"; do
        $cmd -t "$table" -F "$chain" 2>/dev/null && $cmd -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# Shims of our containerds (runc's and Spore's) outlive containerd: kill them by address.
kill_shims() {
  local pids
  pids=$(pgrep -f -- "-address $E2E_DIR/" || true)
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

down() {
  [ -d "$E2E_DIR" ] || return 0
  mkdir -p "$PIDS"
  for node in "${NODES[@]}"; do stop "kubelet-$node"; done
  for node in "${NODES[@]}"; do remove_pods "$node"; done
  for node in "${NODES[@]}"; do stop "containerd-$node"; done
  kill_shims
  for name in kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd registry; do stop "$name"; done
  if [ -n "${K8S_DIR:-}" ] && [ -x "$K8S_DIR/kube-proxy" ]; then
    "$K8S_DIR/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  remove_kubelet_iptables
  # Mounts under the state dir (kubelet volumes, containerd snapshots, shm), deepest first.
  awk -v d="$E2E_DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  for node in "${NODES[@]}"; do
    ip link delete "${NODE_BRIDGE[$node]}" 2>/dev/null || true
    rm -rf "/var/lib/cni/networks/spore-e2e-$node"
  done
  for ip in $(host_ips); do ip addr delete "$ip/32" dev lo 2>/dev/null || true; done
  ip route delete "$SERVICE_CIDR" dev lo 2>/dev/null || true
  rm -rf "$E2E_DIR"
  log "cluster down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
