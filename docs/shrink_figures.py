"""Copy example figures into the docs, reduced to a 256-colour palette PNG.

Usage: ``python docs/shrink_figures.py DEST SRC=NAME [SRC=NAME ...]``; prints each
file's size and the total.
"""
import sys
from pathlib import Path

from PIL import Image


def shrink(src, dest, colors=256, max_width=900):
    img = Image.open(src).convert("RGB")
    if img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)), Image.LANCZOS)
    img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(dest, optimize=True)
    return dest.stat().st_size


def main(argv):
    dest = Path(argv[0])
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for pair in argv[1:]:
        src, name = pair.split("=")
        size = shrink(src, dest / name)
        total += size
        print(f"{name}: {size / 1024:.0f} kB")
    print(f"total: {total / 1024:.0f} kB")


if __name__ == "__main__":
    main(sys.argv[1:])
