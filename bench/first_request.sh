#!/usr/bin/env bash
# Time of a first (uncached) stylized request through the real server, beside the reference doing
# the same work (same content size, style size and iterations), measured in one run.
#
#   bench/first_request.sh [WORK_PX] [ITERS] [QUERY]
#     WORK_PX  --max-work-px of the server (default 512): the longest side the optimisation runs at
#     ITERS    iterations (default 200)
#     QUERY    extra query parameters (default "w=WORK_PX"); pass "" for the bare default request
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/openblas.sh
openblas_check
work=${1:-512}
iters=${2:-200}
query=${3-w=$work}
shared=$(cd .. && pwd)/shared
export STYLEPROXY_WEIGHTS=${STYLEPROXY_WEIGHTS:-$shared/weights}
export STYLEPROXY_BACKEND=${STYLEPROXY_BACKEND:-go}
GOEXPERIMENT=simd go build -o bin/styleproxy ./cmd/styleproxy  # as make build does
tmp=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
STYLEPROXY_ADMIN_TOKEN=bench bin/styleproxy serve --addr 127.0.0.1:$port --data "$tmp/data" \
	--source "$shared/images" --max-work-px "$work" --default-iters "$iters" --max-iters "$iters" \
	--timeout 3600s >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
curl -fs -H "Authorization: Bearer bench" -F name=starry -F style_size=192 -F preset=starry_night \
	-F image=@"$shared/images/starry_night.jpg" "http://127.0.0.1:$port/admin/styles" >/dev/null
url="http://127.0.0.1:$port/img/tubingen.jpg?style=starry&iters=$iters${query:+&$query}"
ours=$(curl -fs -o "$tmp/out" -w '%{time_total}' "$url")
# The reference at the same work size: tubingen is 4:3, so the shorter side is 3/4 of the longest.
short=$((work * 3 / 4))
ref=$(WEIGHTS=$STYLEPROXY_WEIGHTS/squeezenet1_1_features.pth /usr/bin/python3 "$shared/reference/reference.py" \
	bench "$shared/images/tubingen.jpg" "$shared/images/starry_night.jpg" "$short" 192 "$iters" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
python3 - "$ours" "$ref" "$url" "$work" "$iters" <<'PY'
import sys
ours, ref = float(sys.argv[1]), float(sys.argv[2])
print(f"first request {sys.argv[3].split('/img/')[1]} (work {sys.argv[4]} px, {sys.argv[5]} iterations, {__import__('os').environ['STYLEPROXY_BACKEND']} backend): {ours:.1f} s")
print(f"reference, same work: {ref:.1f} s")
print(f"ratio: {ours / ref:.2f}x")
PY
