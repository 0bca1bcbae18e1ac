#!/usr/bin/python3
"""Per-iteration time of the reference implementation: its own transfer() runs ITERS iterations
and the time between consecutive Adam steps is recorded, as wall time and as CPU time of this
process; the median is printed (robust to other processes' bursts on a shared machine), with the
BLAS library torch computes with, as one JSON object.
  reference_iter.py REFERENCE.py CONTENT.jpg STYLE.jpg SIZE STYLE_SIZE ITERS
Set WEIGHTS to the checkpoint file (reference.py's own default is relative to its folder), and
THREADS to run it on that many threads instead of the 2 it asks for."""
import importlib.util, json, os, statistics, sys, time

import torch

if os.environ.get('THREADS'):
    _set_threads, threads = torch.set_num_threads, int(os.environ['THREADS'])
    torch.set_num_threads = lambda _n: _set_threads(threads)

spec = importlib.util.spec_from_file_location('reference', sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
cpath, spath, size, style_size, iters = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
stamps = []

class TimedAdam(torch.optim.Adam):
    """torch's Adam, noting when each step ends."""
    def step(self, *args, **kwargs):
        out = super().step(*args, **kwargs)
        stamps.append((time.perf_counter(), time.process_time()))
        return out

torch.optim.Adam = TimedAdam
net = ref.cnn()
content, style = ref.load_resized(cpath, size), ref.load_resized(spath, style_size)
ref.transfer(content, style, net, iters + 2, decay_at=int((iters + 2) * 0.9))
steps = stamps[2:]  # the first steps warm up
wall = [b[0] - a[0] for a, b in zip(steps, steps[1:])]
cpu = [b[1] - a[1] for a, b in zip(steps, steps[1:])]

torch.ones(64, 64) @ torch.ones(64, 64)
libs = sorted({line.split()[-1] for line in open('/proc/self/maps') if 'blas' in line.split()[-1].lower()})
print(json.dumps({'wall_ms': statistics.median(wall) * 1e3, 'cpu_ms': statistics.median(cpu) * 1e3,
                  'content_shape': list(content.shape[2:]), 'blas': libs,
                  'openblas': any('openblas' in p for p in libs)}))
