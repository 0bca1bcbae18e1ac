#!/usr/bin/env bash
# Per-iteration time of styleproxy's engine beside the reference implementation, measured in one
# run on this machine: a 192x256 content image (tubingen, shorter side 192), the style at 192 px,
# the reference's default loss setup (starry_night). The reference needs Debian's python3-torch
# and python3-torchvision; the engine runs on the backend STYLEPROXY_BACKEND names (default go).
#
#   bench/compare.sh [ITERS]     (default 40 timed iterations each)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-40}
shared=$(cd .. && pwd)/shared
export STYLEPROXY_WEIGHTS=${STYLEPROXY_WEIGHTS:-$shared/weights}
export STYLEPROXY_BACKEND=${STYLEPROXY_BACKEND:-go}

go_ns=$(go test -run '^$' -bench '^BenchmarkIteration$' -benchtime "${iters}x" -count 1 ./engine/ |
	awk '/^BenchmarkIteration/ {print $3}')

# The reference's bench() times its whole transfer (targets included): the slope between two run
# lengths is the per-iteration time alone.
ref() {
	WEIGHTS=$STYLEPROXY_WEIGHTS/squeezenet1_1_features.pth /usr/bin/python3 "$shared/reference/reference.py" \
		bench "$shared/images/tubingen.jpg" "$shared/images/starry_night.jpg" 192 192 "$1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])'
}
short=$(ref 10)
long=$(ref $((10 + iters)))

python3 - "$go_ns" "$short" "$long" "$iters" <<'PY'
import sys
go_ms = float(sys.argv[1]) / 1e6
ref_ms = (float(sys.argv[3]) - float(sys.argv[2])) / int(sys.argv[4]) * 1e3
print(f"engine ({__import__('os').environ['STYLEPROXY_BACKEND']}): {go_ms:8.1f} ms/iteration")
print(f"reference (PyTorch): {ref_ms:8.1f} ms/iteration")
print(f"ratio engine/reference: {go_ms / ref_ms:.2f}x")
PY
