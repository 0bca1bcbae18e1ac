#!/usr/bin/python3
"""Loss-versus-time curves of candidate optimisation schedules beside the reference's loop, in
PyTorch with reference.py's own functions (same network, losses and Adam), so that schedules can
be compared before one is built into the engine.

  /usr/bin/python3 bench/schedules.py CONTENT STYLE SIZE STYLE_SIZE PRESET OUT.csv [SCHEDULE...]

Each row of OUT.csv: the pair (content/style), the schedule (see schedule() for the spelling),
the iteration, the work so far in full-size iteration equivalents (an iteration's pixels over
the full size's), the seconds of optimisation so far (scoring excluded), and the reference's loss
of the 8-bit image at that point, at full size. On a shared machine the work column is the
steadier measure of cost; bench/quality.sh times the engine itself."""
import os, sys, time
import torch
import torch.nn.functional as F
os.environ.setdefault('PRESET', sys.argv[5] if len(sys.argv) > 5 else 'starry_night')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'reference'))
import reference as R  # noqa: E402


def quantised(img):
    """The image as the 8-bit PNG would hold it, normalised again."""
    a = (img * R.STD + R.MEAN).clamp(0, 1)
    a = torch.floor(a * 255 + 0.5) / 255
    return (a - R.MEAN) / R.STD


def score(img, net, ct, st):
    with torch.no_grad():
        _, c, s, t = R.losses(quantised(img), net, ct, st)
    return float(c + s + t)


class Run:
    """Times the optimisation and scores checkpoints outside the timed part."""
    def __init__(self, name, net, ct, st, out):
        self.name, self.net, self.ct, self.st, self.out = name, net, ct, st, out
        self.elapsed, self.it, self.work, self.t0 = 0.0, 0, 0.0, time.time()

    def checkpoint(self, img_full):
        self.elapsed += time.time() - self.t0
        self.out.write(f'{self.pair},"{self.name}",{self.it},{self.work:.2f},{self.elapsed:.3f},{score(img_full, self.net, self.ct, self.st):.1f}\n')
        self.out.flush()
        self.t0 = time.time()


def adam_level(run, img, net, ct, st, iters, lr, every, full=None, warm=0, dfrac=0.9, dlr=0.1,
               restart=True, clamp_until=None, b1=0.9, b2=0.999):
    """Adam on img (any size) against targets ct, st for iters steps: lr ramps up linearly over the
    first warm steps, drops to lr*dlr at dfrac of the run (restarting Adam as the reference does,
    or keeping its moments), and the image is clamped to [-1.5, 1.5] before each step below
    clamp_until (default: all), with Adam's moment rates b1, b2. full(img) maps the image to full
    size for scoring."""
    img = img.clone().requires_grad_(True)
    opt = torch.optim.Adam([img], lr=lr, betas=(b1, b2))
    decay_at = int(iters * dfrac)
    clamp_until = iters if clamp_until is None else clamp_until
    for t in range(iters):
        if t < clamp_until:
            img.data.clamp_(-1.5, 1.5)
        cur = lr * dlr if t >= decay_at else lr * min(1.0, (t + 1) / warm) if warm else lr
        opt.zero_grad()
        _, c, s, tv = R.losses(img, net, ct, st)
        (c + s + tv).backward()
        if t == decay_at and restart:
            opt = torch.optim.Adam([img], lr=cur, betas=(b1, b2))
        for g in opt.param_groups:
            g['lr'] = cur
        opt.step()
        run.it += 1
        run.work += img.shape[2] * img.shape[3] / run.pixels
        if every and (run.it % every == 0):
            run.checkpoint(full(img.detach()) if full else img.detach())
    return img.detach()


def lbfgs_level(run, img, net, ct, st, evals, hist, every):
    """torch.optim.LBFGS (learning rate 1, no line search, history hist) for evals evaluations of
    the loss and gradient, each counted as one iteration."""
    img = img.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([img], lr=1, max_iter=evals, history_size=hist, tolerance_grad=-1,
                            tolerance_change=-1)

    def closure():
        opt.zero_grad()
        _, c, s, tv = R.losses(img, net, ct, st)
        loss = c + s + tv
        loss.backward()
        run.it += 1
        run.work += 1
        if every and run.it % every == 0:
            run.checkpoint(img.detach())
        return loss
    opt.step(closure)


def targets(net, content, style):
    ct = R.extract(content, net)[R.CONTENT_LAYER].clone()
    sf = R.extract(style, net)
    return ct, [R.gram(sf[l]).clone() for l in R.STYLE_LAYERS]


def half(x):
    return F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False, antialias=True)


def schedule(spec, net, content, style, ct, st, out, every=5):
    """spec: reference:ITERS, or adam:n=..,lr=..[,warm=..,dfrac=..,dlr=..,restart=0|1,b1=..,b2=..], or
    c2f:nc=..,nf=..,lr=..[,lrc=..,halfstyle=1,warm=..,...] (nc steps at half size, nf at full),
    or lbfgs:n=..[,hist=..] (n evaluations)."""
    run = Run(spec, net, ct, st, out)
    run.pixels = content.shape[2] * content.shape[3]
    run.pair = PAIR
    H, W = content.shape[2:]
    up = lambda x: F.interpolate(x, size=(H, W), mode='bilinear', align_corners=False)
    kind, _, rest = spec.partition(':')
    if kind == 'reference':
        n = int(rest)
        adam_level(run, content, net, ct, st, n, 3.0, every, dfrac=0.9, dlr=1 / 30, clamp_until=n - 10)
        return
    kw = {k: float(v) for k, v in (p.split('=') for p in rest.split(','))}
    common = {k: kw[k] for k in ('warm', 'dfrac', 'dlr', 'b1', 'b2') if k in kw}
    if 'warm' in common:
        common['warm'] = int(common['warm'])
    common['restart'] = bool(kw.get('restart', 1))
    if kind == 'adam':
        adam_level(run, content, net, ct, st, int(kw['n']), kw['lr'], every, **common)
    elif kind == 'lbfgs':
        lbfgs_level(run, content, net, ct, st, int(kw['n']), int(kw.get('hist', 10)), every)
    elif kind == 'c2f':
        cs = half(content)
        if kw.get('halfstyle'):
            cct, cst = targets(net, cs, half(style))
        else:
            cct, _ = targets(net, cs, style)
            cst = st
        x = adam_level(run, cs, net, cct, cst, int(kw['nc']), kw.get('lrc', kw['lr']), every, full=up, **common)
        adam_level(run, up(x), net, ct, st, int(kw['nf']), kw['lr'], every, **common)


def main():
    cpath, spath, size, ssize, _, outp = sys.argv[1:7]
    names = sys.argv[7:]
    global PAIR
    PAIR = '/'.join(os.path.splitext(os.path.basename(p))[0] for p in (cpath, spath))
    net = R.cnn()
    content, style = R.load_resized(cpath, int(size)), R.load_resized(spath, int(ssize))
    ct, st = targets(net, content, style)
    with open(outp, 'a') as out:
        for n in names:
            schedule(n, net, content, style, ct, st, out)


if __name__ == '__main__':
    main()
