#!/usr/bin/env bash
# Quality and time of `styleproxy stylize` with its defaults beside the reference's 200 iterations,
# in one run, for the three preset pairs at 192 px (shorter side of content and style). Both
# outputs, as 8-bit PNGs, are scored by the reference's own loss function (bench/score.py), so the
# losses are comparable whatever each side optimised internally.
#
#   bench/quality.sh [ROUNDS]     (default 1: each pair once on each side)
#
# PAIRS="content:style ..." picks other pairs from ../shared/images (the style names the preset);
# PAIRS=all runs every photo with every painting.
#
# Times: "loop" is each side's own timing of its optimisation (the reference's bench() seconds,
# targets included; the report's seconds of `stylize`, graph compilation included); "wall" is the
# whole command (process start, weights, decoding). The engine is built with GOEXPERIMENT=simd where
# the CPU has AVX-512 and Go supports it, else plainly. Needs /usr/bin/python3 with torch and
# torchvision; the reference runs on OpenBLAS (bench/openblas.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
shared=$(cd .. && pwd)/shared
export STYLEPROXY_WEIGHTS=${STYLEPROXY_WEIGHTS:-$shared/weights}
export STYLEPROXY_BACKEND=${STYLEPROXY_BACKEND:-go}
export WEIGHTS=$STYLEPROXY_WEIGHTS/squeezenet1_1_features.pth
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=$tmp/styleproxy
if grep -qw avx512f /proc/cpuinfo && GOEXPERIMENT=simd go build -o "$bin" ./cmd/styleproxy 2>/dev/null; then
	build=simd
else
	go build -o "$bin" ./cmd/styleproxy
	build=plain
fi
. bench/openblas.sh
openblas_check

# Both sides get the same inputs: content and style resized once by the reference's own loader
# (torchvision's Resize), so each side's resize (the reference's, or libvips's in stylize) is a
# no-op and the scorer's targets are the ones both optimised against.
prepare() { # IMAGE SIZE OUT.png
	/usr/bin/python3 - "$@" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ['SHARED'], 'reference'))
import reference as R
R.to_png(R.load_resized(sys.argv[1], int(sys.argv[2])), sys.argv[3])
PY
}
export SHARED=$shared
pairs=${PAIRS:-tubingen:starry_night kitten:the_scream stata:composition_vii}
if [ "$pairs" = all ]; then
	pairs=$(for c in tubingen kitten stata; do for s in starry_night the_scream composition_vii; do echo "$c:$s"; done; done)
fi
now() { date +%s.%N; }
echo "pair,round,ref_loop_s,ref_wall_s,ours_loop_s,ours_wall_s,ref_loss,ours_loss" >"$tmp/results.csv"
for round in $(seq "$rounds"); do
	for pair in $pairs; do
		c=${pair%%:*} s=${pair##*:}
		content=$tmp/$c.png style=$tmp/$s.png
		[ -f "$content" ] || prepare "$shared/images/$c.jpg" 192 "$content"
		[ -f "$style" ] || prepare "$shared/images/$s.jpg" 192 "$style"
		t0=$(now)
		ref_loop=$(PRESET=$s /usr/bin/python3 "$shared/reference/reference.py" bench "$content" "$style" 192 192 200 \
			"$tmp/ref_$c.png" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
		t1=$(now)
		"$bin" stylize --content "$content" --style "$style" --preset "$s" --size 192 --style-size 192 \
			--report "$tmp/ours_$c.json" -o "$tmp/ours_$c.png"
		t2=$(now)
		ours_loop=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$tmp/ours_$c.json")
		losses=$(PRESET=$s /usr/bin/python3 bench/score.py "$content" "$style" 192 192 "$tmp/ref_$c.png" "$tmp/ours_$c.png" |
			python3 -c 'import json,sys; print(",".join(str(json.loads(l)["total"]) for l in sys.stdin))')
		echo "$c/$s,$round,$ref_loop,$(echo "$t1 - $t0" | bc),$ours_loop,$(echo "$t2 - $t1" | bc),$losses" >>"$tmp/results.csv"
		if [ -n "${QUALITY_KEEP:-}" ]; then cp "$tmp/ref_$c.png" "$tmp/ours_$c.png" "$QUALITY_KEEP/"; fi
	done
done
python3 - "$tmp/results.csv" "$build" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"stylize defaults ({sys.argv[2]} build, {__import__('os').environ['STYLEPROXY_BACKEND']} backend) beside reference.py, 200 iterations, 192 px")
print(f"{'pair':28} {'round':>5} {'ref loop':>9} {'ours loop':>9} {'ratio':>6} {'ref wall':>9} {'ours wall':>9} {'ratio':>6} {'ref loss':>10} {'ours loss':>10} {'ratio':>6}")
ok = True
for r in rows:
    f = {k: float(v) for k, v in r.items() if k not in ('pair', 'round')}
    lr, wr, qr = f['ours_loop_s'] / f['ref_loop_s'], f['ours_wall_s'] / f['ref_wall_s'], f['ours_loss'] / f['ref_loss']
    ok = ok and qr <= 1 and wr <= 0.5
    print(f"{r['pair']:28} {r['round']:>5} {f['ref_loop_s']:8.1f}s {f['ours_loop_s']:8.1f}s {lr:6.2f} {f['ref_wall_s']:8.1f}s {f['ours_wall_s']:8.1f}s {wr:6.2f} {f['ref_loss']:10.4g} {f['ours_loss']:10.4g} {qr:6.3f}")
print("goal (loss ratio <= 1, wall ratio <= 0.5):", "met" if ok else "NOT met")
PY
cp "$tmp/results.csv" "${QUALITY_CSV:-/dev/null}" 2>/dev/null || true
