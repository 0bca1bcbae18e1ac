#!/usr/bin/env bash
# The GPU check of issue 10, in two halves: `prepare` runs here and fills .gpubench/ (ignored by
# git) with the gpubench binary (the engine with the standard library's image decoders, so the GPU
# host needs no libvips), the weights, two photos and the PyTorch reference; `run` runs on the GPU
# host from the repository root, with .gpubench carried there, and prints compile time per work
# shape, the first transfer at three never-seen aspect ratios after warm-up, the reference schedule
# beside PyTorch eager (reference_cuda.py) on the same GPU, and throughput with 1, 4 and 8
# transfers at once.
#
#   bench/gpu.sh prepare                        # here
#   bash bench/gpu.sh run                       # on the GPU host (device tool: carry .gpubench)
#
# `run` finds JAX's CUDA PJRT plugin in python3's site-packages and links it where GoMLX looks.
# CONV=native runs the engine on XLA's own convolutions instead of im2col (serve --convolutions);
# a short side-by-side of the two: CONV=native STEP=128 SIZES=512 BATCHES=1 bash bench/gpu.sh run,
# then the same with CONV=im2col.
# The same run works on a CPU, small: BACKEND=go DEV=cpu WORK=64 SIZES=48,64 ITERS=5 \
#   BATCH_ITERS=3 BATCHES=1,2 PY=/usr/bin/python3 bench/gpu.sh run
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.gpubench

prepare() {
	local shared
	shared=$(cd .. && pwd)/shared
	mkdir -p "$dir"
	CGO_ENABLED=1 go build -o "$dir/gpubench" ./cmd/gpubench
	cp "$shared/weights/squeezenet1_1_features.pth" "$shared/images/tubingen.jpg" \
		"$shared/images/starry_night.jpg" "$shared/reference/reference.py" \
		"$shared/reference/reference_cuda.py" "$dir/"
	du -sh "$dir"
}

# pjrt links JAX's CUDA plugin under the name GoMLX looks for, and puts NVIDIA's libraries from
# the same site-packages on the loader's path.
pjrt() {
	local site plugin
	site=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	plugin=$(ls "$site"/jax_plugins/xla_cuda*/xla_cuda_plugin.so | head -1)
	mkdir -p "$dir/pjrt"
	ln -sf "$plugin" "$dir/pjrt/pjrt_c_api_cuda_plugin.so"
	export PJRT_PLUGIN_LIBRARY_PATH=$PWD/$dir/pjrt GOMLX_NO_AUTO_INSTALL=1
	LD_LIBRARY_PATH=$(find "$site/nvidia" -maxdepth 3 -type d -name lib | paste -sd:):${LD_LIBRARY_PATH:-}
	export LD_LIBRARY_PATH
	echo "PJRT plugin=$plugin"
}

run() {
	PY=${PY:-python3}
	local backend=${BACKEND:-auto} sizes=${SIZES:-192,512,1024} iters=${ITERS:-200}
	if [ "${DEV:-cuda}" = cuda ]; then
		nvidia-smi -L || true
		pjrt
	fi
	local inputs=$dir/inputs log=$dir/engine.log
	"$dir/gpubench" --weights "$dir/squeezenet1_1_features.pth" --backend "$backend" \
		--content "$dir/tubingen.jpg" --style "$dir/starry_night.jpg" --work "${WORK:-512}" \
		--step "${STEP:-32}" --sizes "$sizes" --iters "$iters" --batches "${BATCHES:-1,4,8}" --conv "${CONV:-im2col}" \
		--batch-iters "${BATCH_ITERS:-50}" --inputs "$inputs" | tee "$log"
	local pairs=""
	for s in ${sizes//,/ }; do pairs+="${pairs:+,}content_$s.png:style.png"; done
	cp "$dir/reference.py" "$dir/reference_cuda.py" "$inputs/"
	WEIGHTS=$PWD/$dir/squeezenet1_1_features.pth ITERS=$iters DEV=${DEV:-cuda} PYTHONUNBUFFERED=1 \
		$PY "$inputs/reference_cuda.py" "$inputs" "$pairs" | tee -a "$log"
	# Side by side: the engine's and PyTorch's seconds for the same shape and schedule.
	awk '/^ENGINE/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); e[kv[1]] = kv[2] } eng[e["shape"]] = e["seconds"] }
	     /^REF/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } ref[$3] = r["seconds"] }
	     END { print "shape      engine_s  pytorch_s  ratio"
	           for (s in eng) if (s in ref) printf "%-10s %8.3f %10.3f %6.2f\n", s, eng[s], ref[s], eng[s] / ref[s] }' "$log"
}

case "${1:-}" in
prepare) prepare ;;
run) run ;;
*) echo "usage: bench/gpu.sh prepare|run" >&2; exit 2 ;;
esac
