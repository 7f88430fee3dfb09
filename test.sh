#!/usr/bin/env bash
# The test command: vet, the whole suite under the race detector, and a
# short run of every fuzz target. Needs only Go (and Chromium for the
# browser test, which .ci/run installs; without it that one test says so
# and fails).
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test -race -count=1 ./...
# The modules kept apart so their dependencies stay out of the library's
# go.mod: the scs/gorilla/Prometheus adapters and the browser test.
for mod in adapters e2e; do
  (cd "$mod" && go vet ./... && go test -race -count=1 ./...)
done
# Every fuzz target, briefly (go test -fuzz takes one target and package
# at a time).
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-10s}" "$pkg"
  done
done
