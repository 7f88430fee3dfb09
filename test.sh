#!/usr/bin/env bash
# The test command: vet, the whole suite under the race detector, and a
# short run of every fuzz target. Needs only Go (and Chromium for the
# browser test, which .ci/run installs; without it that one test says so
# and fails).
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test -race -count=1 ./...
for target in $(go test -list '^Fuzz' ./replicate/ | grep '^Fuzz'); do
  go test -run='^$' -fuzz="^${target}\$" -fuzztime=10s ./replicate/
done
