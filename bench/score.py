#!/usr/bin/python3
"""Scores stylized 8-bit images with the reference's own loss function (reference.py's losses()):
the content target and style targets come from the reference's inputs, the content resized so
its shorter side is SIZE and the style to STYLE_SIZE, as reference.py bench does.

  PRESET=NAME /usr/bin/python3 bench/score.py CONTENT STYLE SIZE STYLE_SIZE IMAGE.png...

Prints one JSON line per image: its content, style, TV and total loss."""
import json, os, sys
import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'reference'))
import reference as R  # noqa: E402  (reads PRESET and WEIGHTS from the environment)


def main():
    cpath, spath, size, ssize = sys.argv[1:5]
    net = R.cnn()
    content, style = R.load_resized(cpath, int(size)), R.load_resized(spath, int(ssize))
    ct = R.extract(content, net)[R.CONTENT_LAYER]
    sf = R.extract(style, net)
    st = [R.gram(sf[l]) for l in R.STYLE_LAYERS]
    for path in sys.argv[5:]:
        img = R.load_exact(path)
        if img.shape != content.shape:
            sys.exit(f'{path}: {list(img.shape[2:])} pixels, the reference works at {list(content.shape[2:])}')
        with torch.no_grad():
            _, c, s, t = R.losses(img, net, ct, st)
        print(json.dumps({'image': path, 'content': float(c), 'style': float(s), 'tv': float(t),
                          'total': float(c + s + t)}))


if __name__ == '__main__':
    main()
