#!/usr/bin/env bash
# Time of a first (uncached) stylized request through the real server, beside the reference's own
# run (its 200 iterations by default) at the same content and style size, measured in one run.
# The request runs on the server's defaults (the fast schedule and its default budget) unless the
# query says otherwise; bench/quality.sh shows that those reach the reference's 200-iteration loss.
#
#   bench/first_request.sh [WORK_PX] [QUERY] [REF_ITERS]
#     WORK_PX    --max-work-px of the server (default 512): the longest side the optimisation runs at
#     QUERY      extra query parameters (default "w=WORK_PX"); pass "" for the bare default request
#                /img/tubingen.jpg?style=starry, or e.g. "schedule=reference&iters=200&w=512" for
#                the reference's own loop
#     REF_ITERS  the reference's iterations (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/openblas.sh
openblas_check
work=${1:-512}
query=${2-w=$work}
ref_iters=${3:-200}
shared=$(cd .. && pwd)/shared
export STYLEPROXY_WEIGHTS=${STYLEPROXY_WEIGHTS:-$shared/weights}
export STYLEPROXY_BACKEND=${STYLEPROXY_BACKEND:-go}
GOEXPERIMENT=simd go build -o bin/styleproxy ./cmd/styleproxy  # as make build does
tmp=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
STYLEPROXY_ADMIN_TOKEN=bench bin/styleproxy serve --addr 127.0.0.1:$port --data "$tmp/data" \
	--source "$shared/images" --max-work-px "$work" --max-iters 100000 \
	--timeout 3600s >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
# As a load balancer would: the request comes once /readyz says every work shape is compiled.
for _ in $(seq 600); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
curl -fs -H "Authorization: Bearer bench" -F name=starry -F style_size=192 -F preset=starry_night \
	-F image=@"$shared/images/starry_night.jpg" "http://127.0.0.1:$port/admin/styles" >/dev/null
url="http://127.0.0.1:$port/img/tubingen.jpg?style=starry${query:+&$query}"
ours=$(curl -fs -o "$tmp/out" -w '%{time_total}' "$url")
# The reference at the same work size: tubingen is 4:3, so the shorter side is 3/4 of the longest.
short=$((work * 3 / 4))
ref=$(WEIGHTS=$STYLEPROXY_WEIGHTS/squeezenet1_1_features.pth /usr/bin/python3 "$shared/reference/reference.py" \
	bench "$shared/images/tubingen.jpg" "$shared/images/starry_night.jpg" "$short" 192 "$ref_iters" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
python3 - "$ours" "$ref" "$url" "$work" "$ref_iters" <<'PY'
import sys
ours, ref = float(sys.argv[1]), float(sys.argv[2])
print(f"first request {sys.argv[3].split('/img/')[1]} (work {sys.argv[4]} px, {__import__('os').environ['STYLEPROXY_BACKEND']} backend): {ours:.1f} s")
print(f"reference, {sys.argv[5]} iterations at the same size: {ref:.1f} s")
print(f"ratio: {ours / ref:.2f}x")
PY
