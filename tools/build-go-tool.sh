#!/usr/bin/env bash
# Builds Go commands from the module proxy into DEST, through a throwaway wrapper module:
# `go install pkg@version` refuses modules whose go.mod has replace or exclude directives
# (Kubernetes, containerd), a wrapper that requires them as tools does not.
#
#   build-go-tool.sh DEST MODULE@VERSION PKG... [-- LDFLAGS]
#
# Kubernetes: its go.mod maps the k8s.io staging modules to local paths; the wrapper
# replaces each with the published v0.X.Y of the same release (read from that go.mod).
set -euo pipefail
dest=${1:?usage: build-go-tool.sh DEST MODULE@VERSION PKG... [-- LDFLAGS]}
module_at=${2:?module@version}
shift 2
pkgs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do pkgs+=("$1"); shift; done
ldflags=${2:-}
module=${module_at%@*}
version=${module_at#*@}

missing=()
for pkg in "${pkgs[@]}"; do
  [ -x "$dest/$(basename "$pkg")" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
go mod init spore.dev/tool-build >/dev/null 2>&1
if [ "$module" = k8s.io/kubernetes ]; then
  gomod=$(go mod download -json "$module_at" | sed -n 's/^\s*"GoMod": "\(.*\)",*$/\1/p')
  staging=${version/#v1./v0.}
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | while read -r m; do
    echo "replace $m => $m $staging" >> go.mod
  done
fi
if ! go get -tool "${pkgs[@]/%/@$version}" > get.log 2>&1; then
  cat get.log >&2
  echo "build-go-tool: go get of $module_at failed" >&2
  exit 1
fi
mkdir -p "$dest"
for pkg in "${missing[@]}"; do
  echo "building $(basename "$pkg") $version" >&2
  # -s -w: no symbol table or DWARF (stack traces keep working): faster links, smaller files.
  go build -trimpath -tags selinux,notest -ldflags "-s -w $ldflags" -o "$dest/$(basename "$pkg")" "$pkg"
done
