#!/usr/bin/env bash
# Peak memory (maximum resident set) of `styleproxy stylize` at several content sizes.
#   bench/memory.sh [SIZES...]    (default 192 512)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared
export STYLEPROXY_WEIGHTS=${STYLEPROXY_WEIGHTS:-$shared/weights}
export STYLEPROXY_BACKEND=${STYLEPROXY_BACKEND:-go}
GOEXPERIMENT=simd go build -o bin/styleproxy ./cmd/styleproxy  # as make build does
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for size in "${@:-192 512}"; do
	for s in $size; do
		kb=$( { /usr/bin/time -f '%M' bin/styleproxy stylize --content "$shared/images/tubingen.jpg" \
			--style "$shared/images/starry_night.jpg" --size "$s" --iters 3 -o "$out/x.png" >/dev/null; } 2>&1 | tail -1)
		echo "stylize --size $s: peak RSS $((kb / 1024)) MiB"
	done
done
