"""Make ``bionp/data/bundled/fashion-mnist-small.npz`` from the full Fashion-MNIST files.

Usage (from a source checkout)::

    BIONP_DATA=path/to/datasets python -m bionp.data.make_bundled \
        [--seed 20261123] [--write-registry]

The subset is class-balanced (Fashion-MNIST has 6,000 train / 1,000 test
images per class; 1,000 / 200 per class are kept), chosen with
:func:`bionp.data.stratified_subset` and bionp's seeded generator, and stored
uint8 in one ``.npz`` (deflate level 9, fixed timestamps: reproducible bytes;
about the size of gzipped IDX files of the same arrays, which this script
also measures).  It prints the MD5 of each
stored array; ``--write-registry`` writes them into
:data:`bionp.data.bundled_subset.BUNDLED_MD5`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

import numpy as np

SEED = 20261123
N_TRAIN, N_TEST = 10000, 2000


def make(root=None, seed: int = SEED, out: Path | None = None) -> dict:
    from bionp.backend import backend
    from bionp.data.bundled_subset import BUNDLED_FILE
    from bionp.data.idx import md5_hex
    from bionp.data.loading import load_uint8
    from bionp.data.preprocess import stratified_subset
    from bionp.random import Generator

    out = Path(out) if out is not None else BUNDLED_FILE
    gen = Generator(seed)
    arrays = {}
    with backend("numpy"):
        for split, n in (("train", N_TRAIN), ("test", N_TEST)):
            images, labels = load_uint8("fashion-mnist", split, root=root, download=False)
            xs, ys = stratified_subset(np.asarray(images), np.asarray(labels), n, rng=gen)
            arrays[f"x_{split}"] = np.ascontiguousarray(xs, dtype=np.uint8)
            arrays[f"y_{split}"] = np.ascontiguousarray(ys, dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_npz(out, arrays)
    gz_bytes = sum(len(gzip.compress(a.tobytes(), 9)) for a in arrays.values())
    return {
        "file": out.name,
        "bytes_npz": out.stat().st_size,
        "bytes_gzip_idx_estimate": gz_bytes,
        "per_class": {k: np.bincount(v).tolist() for k, v in arrays.items() if k.startswith("y")},
        "md5": {k: md5_hex(v) for k, v in arrays.items()},
    }


def _write_npz(path: Path, arrays: dict) -> None:
    """An ``.npz`` like :func:`numpy.savez_compressed`, but deflate level 9 and fixed
    timestamps, so the same arrays always give the same bytes."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def write_registry(md5: dict) -> None:
    from bionp.data import bundled_subset

    path = Path(bundled_subset.__file__)
    text = path.read_text(encoding="utf-8")
    body = "".join(f'    "{k}": "{v}",\n' for k, v in md5.items())
    new, n = re.subn(
        r"BUNDLED_MD5 = \{\n.*?\n\}", "BUNDLED_MD5 = {\n" + body + "}", text, flags=re.S
    )
    if n != 1:
        raise RuntimeError(f"could not find BUNDLED_MD5 in {path}")
    path.write_text(new, encoding="utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--root", default=None, help="folder with fashion-mnist/ (default: BIONP_DATA etc.)"
    )
    ap.add_argument("--seed", type=int, default=SEED, help="seed of the subset's draw")
    ap.add_argument("--out", default=None, help="output .npz (default: the bundled file)")
    ap.add_argument(
        "--write-registry", action="store_true", help="store the MD5s in bundled_subset.py"
    )
    args = ap.parse_args(argv)
    info = make(args.root, args.seed, args.out)
    print(json.dumps(info, indent=1))
    if args.write_registry:
        write_registry(info["md5"])


if __name__ == "__main__":
    main()
