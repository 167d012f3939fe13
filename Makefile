# Spore: `make run` runs the example app locally, `make test` runs every test.
# Both install what they need (Debian packages, Rust targets) first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO        ?= cargo
GUESTS       := target/guests
SPORE        := target/release/spore
APT_PACKAGES := clang lld binutils wasi-libc libclang-rt-dev-wasm32 libc6-dev curl iproute2 hyperfine wrk docker-registry protobuf-compiler \
                containerd runc containernetworking-plugins iptables conntrack busybox-static openssl jq
RUST_TARGETS := wasm32-wasip1 wasm32-wasip2
# What `make run` needs: protoc for the containerd API the engine crate compiles in.
RUN_APT_PACKAGES := protobuf-compiler
# Go tools built from the module proxy (versions in tools/versions.env), cached outside the
# repo by version.
include tools/versions.env
TOOLS           := $(HOME)/.cache/spore-tools
GO_TOOL         := tools/build-go-tool.sh
CRICTL          := $(TOOLS)/crictl-$(CRICTL_VERSION)/crictl
CONTAINERD17_DIR := $(TOOLS)/containerd-$(CONTAINERD17_VERSION)
CONTAINERD17    := $(CONTAINERD17_DIR)/containerd $(CONTAINERD17_DIR)/ctr
CONTAINERD2_DIR := $(TOOLS)/containerd-$(CONTAINERD2_VERSION)
CONTAINERD2     := $(CONTAINERD2_DIR)/containerd $(CONTAINERD2_DIR)/ctr
K8S_DIR         := $(TOOLS)/kubernetes-$(K8S_VERSION)
K8S_COMMANDS    := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
K8S_BINARIES    := $(addprefix $(K8S_DIR)/,$(K8S_COMMANDS))
ETCD            := $(TOOLS)/etcd-$(ETCD_VERSION)/etcd
HELM            := $(TOOLS)/helm-$(HELM_VERSION)/helm
COREDNS         := $(TOOLS)/coredns-$(COREDNS_VERSION)/coredns
# The wasmtime CLI for the benchmark's peer comparison: the version Spore embeds, from the
# cargo registry, cached like the Go tools.
WASMTIME_VERSION := $(shell awk -F'"' '/^name = "wasmtime"$$/ { getline; print $$2; exit }' Cargo.lock)
WASMTIME        := $(TOOLS)/wasmtime-v$(WASMTIME_VERSION)/bin/wasmtime
K8S_MINOR       := $(word 2,$(subst ., ,$(K8S_VERSION)))
K8S_LDFLAGS     := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
                     -X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(K8S_MINOR) \
                     -X $(p).gitTreeState=clean)
export PATH    := $(PATH):/usr/local/go/bin

##@ Main

.PHONY: run
run: ## Build `spore` and the example only, then serve examples/hello-http locally with `spore up`
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(RUN_APT_PACKAGES)" RUST_TARGETS=wasm32-wasip2
	$(CARGO) build --release --locked -p spore-cli
	tests/guests/build.sh $(GUESTS) http
	@echo "spore: try  curl http://127.0.0.1:8080/  (Ctrl-C stops)"
	$(SPORE) up -f examples/hello-http/app.yaml --module $(GUESTS)/http.wasm

.PHONY: test
test: ## Run every test: unit, engine with real guests, CLI, CRDs, containerd, CRI, then e2e
	@# Side by side: the Rust and Go builds each leave a core idle in their serial stretches
	@# (crate chains, links), so on 2 cores this takes minutes less than one after the other.
	$(MAKE) --no-print-directory -j2 build guests tools cluster-tools
	SPORE_CRICTL=$(CRICTL) SPORE_CONTAINERD17_DIR=$(CONTAINERD17_DIR) SPORE_CONTAINERD2_DIR=$(CONTAINERD2_DIR) \
		SPORE_HELM=$(HELM) $(CARGO) test --release --workspace --locked
	$(MAKE) e2e

##@ The e2e cluster (three nodes, built from source; state in E2E_DIR)

E2E_DIR     ?= /var/tmp/spore-e2e
CLUSTER_TESTS := cluster operator scale_to_zero faults validation batch uninstall bench_cluster
E2E_IMAGES  := target/e2e-images
CLUSTER_ENV  = K8S_DIR=$(K8S_DIR) ETCD=$(ETCD) CRICTL=$(CRICTL) \
               IMAGES=$(CURDIR)/$(E2E_IMAGES) E2E_DIR=$(E2E_DIR)

.PHONY: cluster-up
cluster-up: build guests cluster-tools e2e-images ## Start the cluster; then export KUBECONFIG=$(E2E_DIR)/kubeconfig
	$(CLUSTER_ENV) e2e/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the cluster and remove everything it created
	$(CLUSTER_ENV) e2e/cluster.sh down

.PHONY: e2e
e2e: build guests cluster-tools e2e-images ## Fresh cluster, the e2e tests, teardown (always)
	@status=0; \
	export KUBECONFIG=$(E2E_DIR)/kubeconfig SPORE_E2E_DIR=$(E2E_DIR) SPORE_HELM=$(HELM); \
	{ $(CLUSTER_ENV) e2e/cluster.sh up && \
	  $(CARGO) test --release --locked --workspace --test cluster --test operator --test scale_to_zero --test faults --test validation -- --test-threads=1 && \
	  $(CARGO) test --release --locked --workspace --test batch && \
	  $(CARGO) test --release --locked --workspace --test uninstall; } || status=$$?; \
	$(CLUSTER_ENV) e2e/cluster.sh down; \
	if [ $$status -ne 0 ]; then echo "e2e: FAILED (exit $$status); see the test output above"; fi; \
	exit $$status

.PHONY: e2e-images
e2e-images: build guests $(COREDNS) $(CRICTL)
	mkdir -p $(E2E_IMAGES)
	cc -O2 -static -o $(E2E_IMAGES)/pause tests/native/pause.c
	cc -O2 -static -o $(E2E_IMAGES)/http-server tests/native/http-server.c
	target/release/e2e-images $(CURDIR)/$(E2E_IMAGES) $(CURDIR)/$(GUESTS) $(E2E_IMAGES)/pause $(COREDNS) \
		$(CURDIR)/target/release $(CRICTL) $(E2E_IMAGES)/http-server

##@ Building

.PHONY: deps
deps: ## Install Debian packages and Rust targets the build needs
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@installed=$$(rustup target list --installed); \
	for t in $(RUST_TARGETS); do grep -qx $$t <<<"$$installed" || rustup target add $$t; done

.PHONY: build
# --all-targets: with the tests' dev-dependencies, features unify as they do for `cargo test`
# (tokio, semver, kube...); a plain build differs, and `make test` would compile wasmtime,
# kube and their trees twice.
build: deps ## Build the workspace (release), tests included
	$(CARGO) build --release --workspace --all-targets --locked

.PHONY: guests
guests: deps ## Build the Wasm test guests into target/guests
	tests/guests/build.sh $(GUESTS)

.PHONY: tools
tools: $(CRICTL) $(CONTAINERD17) $(CONTAINERD2) $(HELM) ## Build crictl, containerd 1.7 and 2.x and helm from the Go module proxy (cached in ~/.cache/spore-tools)

$(CRICTL):
	$(GO_TOOL) $(dir $@) sigs.k8s.io/cri-tools@$(CRICTL_VERSION) sigs.k8s.io/cri-tools/cmd/crictl \
		-- "-X sigs.k8s.io/cri-tools/pkg/version.Version=$(CRICTL_VERSION)"

$(CONTAINERD17) &:
	$(GO_TOOL) $(CONTAINERD17_DIR) github.com/containerd/containerd@$(CONTAINERD17_VERSION) \
		github.com/containerd/containerd/cmd/containerd github.com/containerd/containerd/cmd/ctr \
		-- "-X github.com/containerd/containerd/version.Version=$(CONTAINERD17_VERSION)"

$(CONTAINERD2) &:
	$(GO_TOOL) $(CONTAINERD2_DIR) github.com/containerd/containerd/v2@$(CONTAINERD2_VERSION) \
		github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr \
		-- "-X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD2_VERSION)"

.PHONY: cluster-tools
cluster-tools: $(K8S_BINARIES) $(ETCD) $(HELM) $(CRICTL) $(COREDNS) ## Build Kubernetes, etcd, helm, crictl, CoreDNS from the Go module proxy (cached)

$(K8S_BINARIES) &:
	$(GO_TOOL) $(K8S_DIR) k8s.io/kubernetes@$(K8S_VERSION) $(addprefix k8s.io/kubernetes/cmd/,$(K8S_COMMANDS)) \
		-- "$(K8S_LDFLAGS)"

$(ETCD):
	$(GO_TOOL) $(dir $@) go.etcd.io/etcd/server/v3@$(ETCD_VERSION) go.etcd.io/etcd/server/v3 \
		-- "-X go.etcd.io/etcd/api/v3/version.GitSHA=$(ETCD_VERSION)"
	mv $(dir $@)/v3 $@

$(COREDNS):
	$(GO_TOOL) $(dir $@) github.com/coredns/coredns@$(COREDNS_VERSION) github.com/coredns/coredns

$(HELM):
	$(GO_TOOL) $(dir $@) helm.sh/helm/v3@$(HELM_VERSION) helm.sh/helm/v3/cmd/helm \
		-- "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)"

.PHONY: crds
crds: ## Regenerate crds/*.yaml and the Helm chart's copies from the Rust types
	$(CARGO) run --release --locked -p spore-crds --bin crdgen
	$(CARGO) run --release --locked -p spore-crds --bin crdgen helm/spore/crds

##@ Quality

.PHONY: bench
bench: build guests bench-guests tools $(WASMTIME) ## Run benchmarks (engine, peers, containerd, then the cluster), write docs/benchmarks.md
	SPORE_CRICTL=$(CRICTL) SPORE_CONTAINERD17_DIR=$(CONTAINERD17_DIR) SPORE_CONTAINERD2_DIR=$(CONTAINERD2_DIR) \
		SPORE_WASMTIME=$(WASMTIME) bench/run.sh docs/benchmarks.md
	$(MAKE) bench-cluster

.PHONY: bench-guests
bench-guests: deps ## Build the benchmark's Python and JavaScript components (componentize-py, componentize-js)
	tests/guests/build-bench.sh $(GUESTS)

$(WASMTIME):
	$(CARGO) install wasmtime-cli --version $(WASMTIME_VERSION) --locked --quiet \
		--root $(TOOLS)/wasmtime-v$(WASMTIME_VERSION) --target-dir $(TOOLS)/wasmtime-build

.PHONY: bench-cluster
bench-cluster: build guests bench-guests cluster-tools e2e-images ## Cluster benchmarks (a fresh cluster of 120 pods a node), appended to docs/benchmarks.md
	@status=0; \
	export KUBECONFIG=$(E2E_DIR)/kubeconfig SPORE_E2E_DIR=$(E2E_DIR) SPORE_HELM=$(HELM) \
		SPORE_BENCH_OUT=$(CURDIR)/docs/benchmarks.md; \
	{ MAX_PODS=120 $(CLUSTER_ENV) e2e/cluster.sh up && \
	  $(CARGO) test --release --locked --workspace --test bench_cluster -- --ignored --test-threads=1 --nocapture; \
	} || status=$$?; \
	$(CLUSTER_ENV) e2e/cluster.sh down; \
	exit $$status

.PHONY: lint
lint: ## Clippy and rustfmt checks
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@# The cluster's tests are `test = false`, which --all-targets skips.
	$(CARGO) clippy --workspace --locked $(foreach t,$(CLUSTER_TESTS),--test $(t)) -- -D warnings

.PHONY: clean
clean: ## Remove build outputs
	$(CARGO) clean

.PHONY: help
help: ## List targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)
