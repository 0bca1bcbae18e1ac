#!/usr/bin/env bash
# Per-iteration time of styleproxy's engine beside the reference implementation, measured in one
# run on this machine: a 192x256 content image (tubingen, shorter side 192), the style at 192 px,
# the reference's default loss setup (starry_night). The engine runs as two builds, plain and
# GOEXPERIMENT=simd (AVX-512 kernels), on the backend STYLEPROXY_BACKEND names (default go); the
# reference (Debian's python3-torch and python3-torchvision) runs on OpenBLAS (see openblas.sh).
# The three take turns, ROUNDS times, so that load from other processes falls on all of them;
# each line gives wall and CPU milliseconds per iteration and the engine/reference wall ratios.
#
# THREADS=1 runs both on one thread (GOMAXPROCS=1; torch, OpenMP and OpenBLAS at 1), which other
# processes' load distorts less: waiting threads of a busy parallel run spin and lose turns.
#
#   bench/compare.sh [ITERS] [ROUNDS]     (default 20 timed iterations each, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/openblas.sh
iters=${1:-20}
rounds=${2:-3}
shared=$(cd .. && pwd)/shared
export STYLEPROXY_WEIGHTS=${STYLEPROXY_WEIGHTS:-$shared/weights}
export STYLEPROXY_BACKEND=${STYLEPROXY_BACKEND:-go}
openblas_check
threads=${THREADS:-2}
if [ -n "${THREADS:-}" ]; then
	export GOMAXPROCS=$THREADS OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/plain.test" ./engine/
GOEXPERIMENT=simd go test -c -o "$tmp/simd.test" ./engine/

# Prints "WALL_MS CPU_MS" per iteration for one engine build.
engine() {
	(cd engine && "$tmp/$1.test" -test.run '^$' -test.bench '^BenchmarkIteration$' -test.benchtime "${iters}x") |
		awk '/^BenchmarkIteration/ {for (i = 1; i < NF; i++) if ($(i+1) == "cpu-ms/op") cpu = $i; print $3 / 1e6, cpu}'
}
reference() {
	WEIGHTS=$STYLEPROXY_WEIGHTS/squeezenet1_1_features.pth /usr/bin/python3 bench/reference_iter.py \
		"$shared/reference/reference.py" "$shared/images/tubingen.jpg" "$shared/images/starry_night.jpg" 192 192 "$iters"
}

echo "backend $STYLEPROXY_BACKEND, 192x256, $threads threads, $iters iterations a turn, load $(cut -d' ' -f1-3 /proc/loadavg); ms per iteration, wall (cpu)"
for r in $(seq "$rounds"); do
	plain=$(engine plain)
	simd=$(engine simd)
	ref=$(reference)
	python3 - "$r" "$plain" "$simd" "$ref" <<'PY'
import json, sys
r, plain, simd, ref = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), json.loads(sys.argv[4])
pw, pc, sw, sc = (float(v) for v in plain + simd)
rw, rc = ref["wall_ms"], ref["cpu_ms"]
blas = "OpenBLAS" if ref["openblas"] else "NOT OpenBLAS: " + ",".join(ref["blas"])
print(f"round {r}: engine plain {pw:6.0f} ({pc:4.0f})  engine simd {sw:6.0f} ({sc:4.0f})  "
      f"reference {rw:6.0f} ({rc:4.0f}, {blas})  simd/reference {sw / rw:.2f}x  plain/reference {pw / rw:.2f}x  simd/plain {sw / pw:.2f}x")
PY
done
