# Spore: `make run` runs the example app locally, `make test` runs every test.
# Both install what they need (Debian packages, Rust targets) first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO        ?= cargo
GUESTS       := target/guests
SPORE        := target/release/spore
APT_PACKAGES := clang lld wasi-libc libclang-rt-dev-wasm32 libc6-dev curl iproute2 hyperfine wrk docker-registry protobuf-compiler \
                containerd runc containernetworking-plugins
RUST_TARGETS := wasm32-wasip1 wasm32-wasip2
# Go tools built from the module proxy, cached outside the repo by version.
TOOLS          := $(HOME)/.cache/spore-tools
CRICTL_VERSION := v1.34.0
CRICTL         := $(TOOLS)/crictl-$(CRICTL_VERSION)/crictl
CONTAINERD2_VERSION := v2.1.4
CONTAINERD2_DIR     := $(TOOLS)/containerd-$(CONTAINERD2_VERSION)
CONTAINERD2         := $(CONTAINERD2_DIR)/containerd $(CONTAINERD2_DIR)/ctr
export PATH    := $(PATH):/usr/local/go/bin

##@ Main

.PHONY: run
run: build guests ## Build, then serve examples/hello-http locally with `spore up`
	@echo "spore: try  curl http://127.0.0.1:8080/  (Ctrl-C stops)"
	$(SPORE) up -f examples/hello-http/wasmapp.yaml --module $(GUESTS)/http.wasm

.PHONY: test
test: build guests tools ## Run every test (unit, engine with real guests, CLI, CRDs, containerd, CRI)
	SPORE_CRICTL=$(CRICTL) SPORE_CONTAINERD2_DIR=$(CONTAINERD2_DIR) $(CARGO) test --release --workspace --locked

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
build: deps ## Build the workspace (release)
	$(CARGO) build --release --workspace --locked

.PHONY: guests
guests: deps ## Build the Wasm test guests into target/guests
	tests/guests/build.sh $(GUESTS)

.PHONY: tools
tools: $(CRICTL) $(CONTAINERD2) ## Build crictl and containerd 2.x from the Go module proxy (cached in ~/.cache/spore-tools)

$(CRICTL):
	GOBIN=$(dir $@) CGO_ENABLED=0 GOFLAGS=-trimpath go install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION)

$(CONTAINERD2):
	tests/tools/build-containerd.sh $(CONTAINERD2_VERSION) $(CONTAINERD2_DIR)

.PHONY: crds
crds: ## Regenerate crds/*.yaml from the Rust types
	$(CARGO) run --release --locked -p spore-crds --bin crdgen

##@ Quality

.PHONY: bench
bench: build guests ## Run benchmarks, write docs/benchmarks.md
	bench/run.sh docs/benchmarks.md

.PHONY: lint
lint: ## Clippy and rustfmt checks
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

.PHONY: clean
clean: ## Remove build outputs
	$(CARGO) clean

.PHONY: help
help: ## List targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)
