#!/usr/bin/python3
"""Draws the procedural golden pairs: exact-size PNGs full of flat colour areas, so that max-pool
windows hold tied maxima and ReLUs see exact zeros. Then run, for each pair,
  PRESET=<preset> /usr/bin/python3 ../shared/reference/reference.py golden CONTENT STYLE OUT.json
(see README.md here for the exact commands)."""
from PIL import Image, ImageDraw

def blocks(w, h):
    im = Image.new('RGB', (w, h), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, w // 2, h // 3], fill=(200, 30, 30))
    d.rectangle([w // 3, h // 2, w - 1, h - 1], fill=(20, 40, 160))
    d.ellipse([w // 5, h // 5, w // 5 + 30, h // 5 + 24], fill=(0, 0, 0))
    for x in range(0, w, 8):  # a fence of 3-pixel vertical stripes down the right side
        if x > 2 * w // 3:
            d.rectangle([x, 0, x + 2, h // 2], fill=(250, 220, 0))
    return im

def stripes(w, h):
    im = Image.new('RGB', (w, h), (0, 0, 0))
    d = ImageDraw.Draw(im)
    palette = [(255, 255, 255), (0, 120, 255), (255, 80, 0), (0, 0, 0), (40, 200, 60)]
    for i, y in enumerate(range(0, h, 5)):
        d.rectangle([0, y, w - 1, y + 4], fill=palette[i % len(palette)])
    d.rectangle([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=(128, 128, 128))
    return im

def flat_logo(w, h):
    im = Image.new('RGB', (w, h), (245, 245, 245))  # a flat background, as around a logo
    d = ImageDraw.Draw(im)
    d.rectangle([w // 6, h // 6, w // 2, h // 2], fill=(0, 0, 0))
    d.polygon([(w // 2, h - 5), (w - 5, h // 3), (w - 5, h - 5)], fill=(220, 0, 120))
    d.rectangle([0, h - 9, w - 1, h - 1], fill=(255, 255, 255))
    return im

def checker(w, h, cell):
    im = Image.new('RGB', (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = (255, 200, 0) if (x // cell + y // cell) % 2 else (10, 10, 80)
    return im

if __name__ == '__main__':
    blocks(101, 77).save('content_blocks_101x77.png')
    stripes(63, 45).save('style_stripes_63x45.png')
    flat_logo(57, 83).save('content_logo_57x83.png')
    checker(49, 35, 4).save('style_checker_49x35.png')
