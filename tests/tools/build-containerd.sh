#!/usr/bin/env bash
# Builds containerd and ctr VERSION (2.x) from the Go module proxy into DEST.
# `go install` refuses containerd's go.mod (exclude directives), so a throwaway wrapper
# module requires it as a tool and builds from there.
set -euo pipefail
version=${1:?usage: build-containerd.sh VERSION DEST}
dest=${2:?usage: build-containerd.sh VERSION DEST}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
cd "$work"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
go mod init spore.dev/containerd-build >/dev/null 2>&1
module=github.com/containerd/containerd/v2
go get -tool "$module/cmd/containerd@$version" "$module/cmd/ctr@$version" >get.log 2>&1 || { cat get.log; exit 1; }
ldflags="-X $module/version.Version=$version"
for cmd in containerd ctr; do
  [ -x "$dest/$cmd" ] || go build -trimpath -ldflags "$ldflags" -o "$dest/$cmd" "$module/cmd/$cmd"
done
echo "built containerd $version into $dest"
