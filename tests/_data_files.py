"""Writers of small dataset files in the real formats, for the data tests.

Written independently of bionp's own writer: IDX headers with ``struct``,
CIFAR-10 python batches as the opcode stream Python 2's cPickle produced for
the official files (protocol 2, byte strings as BINSTRING, the array through
``numpy.core.multiarray._reconstruct``), CIFAR-10 binary records by hand.
"""

import dataclasses
import gzip
import hashlib
import struct

import numpy as np
import pytest

from bionp.data import locate, registry


def idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    dt = {0x08: ">u1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4"}[code]
    return header + arr.astype(dt).tobytes()


def write_idx(path, arr, gz=False, code=0x08):
    data = idx_bytes(arr, code)
    path.write_bytes(gzip.compress(data) if gz else data)
    return hashlib.md5(data).hexdigest()


def md5(data):
    return hashlib.md5(data).hexdigest()


def _binstring(b):
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def _int(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def cifar_py2_pickle(data_u8, labels):
    """Bytes of a CIFAR-10 python batch as the official (Python 2) files are written."""
    n, d = data_u8.shape
    out = b"\x80\x02}("
    out += _binstring(b"batch_label") + _binstring(b"testing batch 1 of 1")
    out += _binstring(b"labels") + b"](" + b"".join(_int(int(v)) for v in labels) + b"e"
    out += (
        _binstring(b"data")
        + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + _binstring(b"b")
        + b"\x87R(K\x01"
        + _int(n)
        + _int(d)
        + b"\x86"
        + b"cnumpy\ndtype\n"
        + _binstring(b"u1")
        + b"K\x00K\x01\x87R"
        + b"(K\x03"
        + _binstring(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89"
        + _binstring(np.ascontiguousarray(data_u8, dtype=np.uint8).tobytes())
        + b"tb"
    )
    out += (
        _binstring(b"filenames")
        + b"]("
        + b"".join(_binstring(f"img{i}.png".encode()) for i in range(n))
        + b"e"
    )
    out += b"u."
    return out


def cifar_binary(data_u8, labels):
    rec = np.concatenate([np.asarray(labels, np.uint8)[:, None], data_u8.astype(np.uint8)], axis=1)
    return rec.tobytes()


def malicious_pickle(sentinel):
    """A pickle whose REDUCE would call os.system (touching ``sentinel``) if globals resolved."""
    cmd = f"touch {sentinel}".encode()
    return b"\x80\x02cos\nsystem\n" + _binstring(cmd) + b"\x85R."


def images(n, shape=(28, 28), seed=0):
    from bionp.random import Generator

    return Generator(seed).integers(0, 256, size=(n, *shape), xp=np).astype(np.uint8)


def labels(n, n_classes=10):
    return (np.arange(n) % n_classes).astype(np.uint8)


def patch_files(monkeypatch, name, md5_by_file, fmt=None, size_none=True):
    """Registry entry of ``name`` with the given payload MD5s (tests use small files)."""
    spec = registry.DATASETS[name]

    def fix(fs):
        return tuple(
            dataclasses.replace(
                f, md5=md5_by_file.get(f.name, f.md5), size=None if size_none else f.size
            )
            for f in fs
        )

    if spec.kind == "cifar10":
        files = {k: {s: fix(fs) for s, fs in per.items()} for k, per in spec.files.items()}
    else:
        files = {s: fix(fs) for s, fs in spec.files.items()}
    monkeypatch.setitem(registry.DATASETS, name, dataclasses.replace(spec, files=files))


def isolate(monkeypatch, tmp_path):
    """No BIONP_DATA, no system packages, an empty cache, downloads off."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BIONP_CACHE", str(cache))
    monkeypatch.delenv("BIONP_DATA", raising=False)
    monkeypatch.setenv("BIONP_OFFLINE", "1")
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", ())
    return cache


def snapshot(folder):
    """{relative path: bytes} of everything under ``folder`` (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def write_mnist_like(folder, n_train=30, n_test=12, gz=True, seed=0):
    """The four IDX files of a small MNIST-format dataset; returns {file: payload md5}."""
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    out = {}
    out["train-images-idx3-ubyte"] = write_idx(
        folder / f"train-images-idx3-ubyte{sfx}", images(n_train, seed=seed), gz
    )
    out["train-labels-idx1-ubyte"] = write_idx(
        folder / f"train-labels-idx1-ubyte{sfx}", labels(n_train), gz
    )
    out["t10k-images-idx3-ubyte"] = write_idx(
        folder / f"t10k-images-idx3-ubyte{sfx}", images(n_test, seed=seed + 1), gz
    )
    out["t10k-labels-idx1-ubyte"] = write_idx(
        folder / f"t10k-labels-idx1-ubyte{sfx}", labels(n_test), gz
    )
    return out


@pytest.fixture
def data_env(monkeypatch, tmp_path):
    return isolate(monkeypatch, tmp_path)
