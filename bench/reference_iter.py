#!/usr/bin/python3
"""Per-iteration time of the reference implementation: the slope between two lengths of its own
transfer() (so that loading, targets and start-up cancel out), as wall time and as CPU time of
this process. Prints one JSON object, with the BLAS library torch computes with.
  reference_iter.py REFERENCE.py CONTENT.jpg STYLE.jpg SIZE STYLE_SIZE ITERS
Set WEIGHTS to the checkpoint file (reference.py's own default is relative to its folder)."""
import importlib.util, json, sys, time

spec = importlib.util.spec_from_file_location('reference', sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
cpath, spath, size, style_size, iters = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
net = ref.cnn()
content, style = ref.load_resized(cpath, size), ref.load_resized(spath, style_size)

def run(n):
    w, c = time.perf_counter(), time.process_time()
    ref.transfer(content, style, net, n, decay_at=int(n * 0.9))
    return time.perf_counter() - w, time.process_time() - c

def blas():
    """The BLAS shared library mapped into this process (after a product has run)."""
    ref.torch.ones(64, 64) @ ref.torch.ones(64, 64)
    libs = set()
    for line in open('/proc/self/maps'):
        path = line.split()[-1]
        if 'blas' in path.lower():
            libs.add(path)
    return sorted(libs)

run(2)  # warm up
w0, c0 = run(10)
w1, c1 = run(10 + iters)
libs = blas()
print(json.dumps({'wall_ms': (w1 - w0) / iters * 1e3, 'cpu_ms': (c1 - c0) / iters * 1e3,
                  'content_shape': list(content.shape[2:]), 'blas': libs,
                  'openblas': any('openblas' in p for p in libs)}))
