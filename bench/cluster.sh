#!/usr/bin/env bash
# The cluster's costs beside a single host, measured in one run on this machine: cached-hit
# throughput of a replica whose hits come from memory and from the shared tier (NATS object
# store), and the latency of a miss that goes through the work queue to a worker beside one
# computed in process.
#
#   bench/cluster.sh [ITERS] [MISSES] [SECONDS]
#     ITERS    iterations of each missed stylization (default 20)
#     MISSES   distinct URLs missed on each setup (default 5)
#     SECONDS  length of each throughput run (default 5)
# Needs nats-server (make nats installs Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-20}
misses=${2:-5}
secs=${3:-5}
shared=$(cd .. && pwd)/shared
export STYLEPROXY_WEIGHTS=${STYLEPROXY_WEIGHTS:-$shared/weights}
export STYLEPROXY_BACKEND=${STYLEPROXY_BACKEND:-go}
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
GOEXPERIMENT=simd go build -o bin/styleproxy ./cmd/styleproxy
go build -o bin/load ./bench/load
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
port() { echo $((20000 + RANDOM % 20000)); }
up() { for _ in $(seq 300); do curl -fs "$1/healthz" >/dev/null && return; sleep 0.2; done; echo "$1 did not start" >&2; exit 1; }

np=$(port)
"$nats_bin" -a 127.0.0.1 -p "$np" -js -sd "$tmp/nats" >"$tmp/nats.log" 2>&1 &
pids+=($!)
nats=nats://127.0.0.1:$np
common=(--source "$shared/images" --max-work-px 64 --timeout 60s --admin-token bench)
single=http://127.0.0.1:$(port)
front=http://127.0.0.1:$(port)
nomem=http://127.0.0.1:$(port)
bin/styleproxy serve --addr "${single#http://}" --data "$tmp/single" "${common[@]}" >"$tmp/single.log" 2>&1 &
pids+=($!)
sleep 1
bin/styleproxy serve --addr "${front#http://}" --data "$tmp/front" --nats "$nats" --cache-disk-mb 0 "${common[@]}" >"$tmp/front.log" 2>&1 &
pids+=($!)
bin/styleproxy serve --addr "${nomem#http://}" --data "$tmp/nomem" --nats "$nats" --cache-disk-mb 0 --cache-mem-mb 0 "${common[@]}" >"$tmp/nomem.log" 2>&1 &
pids+=($!)
bin/styleproxy worker --addr 127.0.0.1:$(port) --nats "$nats" --max-work-px 64 >"$tmp/worker.log" 2>&1 &
pids+=($!)
for u in "$single" "$front" "$nomem"; do up "$u"; done
for u in "$single" "$front"; do
	curl -fs -H "Authorization: Bearer bench" -F name=starry -F style_size=64 \
		-F image=@"$shared/images/starry_night.jpg" "$u/admin/styles" >/dev/null
done
# Both the single host and the worker compile their work shapes before measuring.
for _ in $(seq 600); do curl -fs "$single/readyz" >/dev/null && break; sleep 0.2; done
sleep 2

echo "miss latency: $misses distinct URLs, $iters iterations each, work 64 px, $STYLEPROXY_BACKEND backend"
for setup in single front; do
	base=${!setup}
	total=0
	for i in $(seq "$misses"); do
		t=$(curl -fs -o /dev/null -w '%{time_total}' "$base/img/tubingen.jpg?style=starry&iters=$((iters + i))&w=64&q=$i")
		total=$(python3 -c "print($total + $t)")
	done
	printf '  %-28s %.3f s a miss\n' "$([ $setup = single ] && echo 'single host (in process)' || echo 'replica -> queue -> worker')" \
		"$(python3 -c "print($total / $misses)")"
done

url="img/tubingen.jpg?style=starry&iters=$((iters + 1))&w=64&q=1"
echo "cached-hit throughput, 16 clients, ${secs}s each, one URL:"
for setup in single front nomem; do
	label=$(case $setup in single) echo "single host, memory hit";; front) echo "replica, memory hit";; nomem) echo "replica, shared-tier hit";; esac)
	printf '  %-28s ' "$label"
	bin/load -c 16 -d "${secs}s" "${!setup}/$url" | awk '/^requests\/s/ {r=$2} /^latency/ {l=$3} END {printf "%s req/s, p50 %s\n", r, l}'
done
