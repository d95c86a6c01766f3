"""Generated corrupt files for every loader (issue 24): IDX and CIFAR files, the ``.npy`` cache,
the sweep store and sweep files (checkpoints: tests/test_checkpoint.py).

Each file is truncated at every tenth of its length (0/10 is the empty file), has one byte
flipped (position and bit drawn by hypothesis), is replaced by a file of another format, or by a
directory.  A loader gives one clear bionp error naming the file, or - where the damage leaves
the content intact (a flipped bit in gzip's header timestamp) or the format allows it (a store
cut at a record boundary) - exactly the original data; never a part of it, never a bad entry in
the data cache.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bionp as bnp
import tally
from bionp.data import DataError
from bionp.sweep import StoreError, SweepError, load_sweep_file, read_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _data_files import (  # noqa: E402
    cifar_binary,
    cifar_py2_pickle,
    images,
    isolate,
    md5,
    patch_files,
    snapshot,
    write_mnist_like,
)

OTHER_FORMAT = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, }" + b" " * 64
FLIPS = settings(settings.get_profile("bionp-fuzz"), max_examples=15)


def _damages(raw: bytes):
    """(label, function writing the damaged file at a path) for the fixed damages."""
    out = [(f"truncated at {k}/10", lambda p, k=k: p.write_bytes(raw[: len(raw) * k // 10]))
           for k in range(10)]
    out.append(("another format", lambda p: p.write_bytes(OTHER_FORMAT)))
    out.append(("a directory", lambda p: (p.unlink(), p.mkdir())))
    return out


def _restore(path: Path, raw: bytes):
    if path.is_dir():
        shutil.rmtree(path)
    path.write_bytes(raw)


def _flip(raw: bytes, pos: int, bit: int) -> bytes:
    b = bytearray(raw)
    b[pos % len(b)] ^= 1 << bit
    return bytes(b)


def _equal(a, b):
    return all(np.array_equal(bnp.asnumpy(x), bnp.asnumpy(y)) for x, y in zip(a, b))


# ------------------------------------------------------------------------------ IDX / CIFAR
def _idx_setup(monkeypatch, tmp_path, gz):
    cache = isolate(monkeypatch, tmp_path)
    root = tmp_path / "d"
    md5s = write_mnist_like(root / "mnist", gz=gz)
    patch_files(monkeypatch, "mnist", md5s)
    return cache, root, root / "mnist" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))


def _cifar_setup(monkeypatch, tmp_path, fmt):
    cache = isolate(monkeypatch, tmp_path)
    folder = tmp_path / ("cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin")
    folder.mkdir()
    md5s = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = images(3, (3072,), seed=i).reshape(3, 3072)
        raw = (cifar_py2_pickle if fmt == "python" else cifar_binary)(data, np.arange(3) % 10)
        fname = name if fmt == "python" else name + ".bin"
        (folder / fname).write_bytes(raw)
        md5s[fname] = md5(raw)
    patch_files(monkeypatch, "cifar10", md5s)
    return cache, tmp_path, folder / ("test_batch" if fmt == "python" else "test_batch.bin")


def _without_source(files: dict) -> dict:
    """The cache snapshot with each manifest's ``source`` signature (paths, sizes,
    mtimes of the raw files) left out."""
    out = dict(files)
    for k, v in files.items():
        if k.endswith(".cache.json"):
            man = json.loads(v)
            man.pop("source", None)
            out[k] = man
    return out


def _check_loader(name, cache, root, target, label_tally, flips):
    split = "test" if name == "cifar10" else "train"
    good = bnp.data.load(name, split=split, root=root)  # cached
    before = snapshot(cache)
    raw = target.read_bytes()

    def attempt(what):
        pre = snapshot(cache)  # an earlier accepted example may have refreshed the signature
        try:
            got = bnp.data.load(name, split=split, root=root)
        except DataError as exc:  # bionp's data errors (ValueError / FileNotFoundError)
            assert target.name.split(".")[0] in str(exc), f"{what}: {exc}"
            assert snapshot(cache) == pre, f"{what}: refused, but the cache changed"
        else:
            # a damage the checksum cannot see (a gzip header byte: the MD5 is of the
            # decompressed payload) loads the same data; the manifest may then record the
            # file's new size/mtime, nothing else
            assert _equal(got, good), f"{what}: loaded other data than the file's"
            assert _without_source(snapshot(cache)) == _without_source(before), \
                f"{what}: the cache changed beyond the source's signature"
        tally.FILES[label_tally] += 1

    for what, damage in _damages(raw):
        damage(target)
        attempt(what)
        _restore(target, raw)

    @flips
    @given(pos=st.integers(0, len(raw) - 1), bit=st.integers(0, 7))
    def flipped(pos, bit):
        target.write_bytes(_flip(raw, pos, bit))
        try:
            attempt(f"byte {pos} bit {bit} flipped")
        finally:
            _restore(target, raw)

    flipped()


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_idx_files(monkeypatch, tmp_path, gz):
    cache, root, target = _idx_setup(monkeypatch, tmp_path, gz)
    _check_loader("mnist", cache, root, target, "IDX", FLIPS)


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_cifar_files(monkeypatch, tmp_path, fmt):
    cache, root, target = _cifar_setup(monkeypatch, tmp_path, fmt)
    _check_loader("cifar10", cache, root, target, "CIFAR", FLIPS)


# ----------------------------------------------------------------------------- the .npy cache
def test_npy_cache_damaged_is_rebuilt_never_used(monkeypatch, tmp_path):
    """A damaged cache copy is never handed over: the split is read again from its source and
    the copy rewritten (the cache is bionp's own, so repair, not refusal, is what helps)."""
    cache, root, _ = _idx_setup(monkeypatch, tmp_path, gz=True)
    good = bnp.data.load("mnist", root=root)
    npys = sorted((cache / "mnist").glob("train-*.npy"))
    assert len(npys) == 2

    def attempt(what):
        got = bnp.data.load("mnist", root=root)
        assert _equal(got, good), f"{what}: the damaged cache was used"
        again = bnp.data.load("mnist", root=root)  # and the cache entry was repaired
        assert _equal(again, good), f"{what}: a bad cache entry was left"
        assert all(p.is_file() for p in npys), what
        tally.FILES[".npy cache"] += 1

    for npy in npys:
        raw = npy.read_bytes()
        for what, damage in _damages(raw):
            damage(npy)
            attempt(f"{npy.name} {what}")
            _restore(npy, raw)

        # a flipped bit in the header (magic, version, dtype, shape) is detected; one in the
        # pixels is not (the cache is memory-mapped unread: see the report of issue 24)
        @FLIPS
        @given(pos=st.integers(0, 127), bit=st.integers(0, 7))
        def flipped(pos, bit):
            npy.write_bytes(_flip(raw, pos, bit))
            try:
                attempt(f"{npy.name} byte {pos} bit {bit} flipped")
            finally:
                if npy.is_dir():
                    shutil.rmtree(npy)
                if npy.read_bytes() != raw:
                    npy.write_bytes(raw)

        flipped()  # noqa: B023 - run in this iteration


# ------------------------------------------------------------------------ sweep store and file
def _task(config, seed):
    return {"accuracy": float(config["a"])}


def test_sweep_store(tmp_path):
    store = tmp_path / "s.jsonl"
    bnp.sweep.run(_task, [{"a": i} for i in range(4)], store=store, verbose=False,
                  progress=False)
    raw = store.read_bytes()
    header, records = read_store(store)

    def attempt(what):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h, recs = read_store(store)
        except StoreError as exc:
            assert str(store) in str(exc), f"{what}: {exc}"
        else:
            # a store cut at a record boundary (or a crash's torn last line) is a shorter store;
            # a record is never handed over in part or changed (every line has its checksum)
            assert h in (None, header), what
            assert recs == records[: len(recs)], f"{what}: a record was read in part or changed"
        tally.FILES["sweep store"] += 1

    for what, damage in _damages(raw):
        damage(store)
        attempt(what)
        _restore(store, raw)

    @FLIPS
    @given(pos=st.integers(0, len(raw) - 1), bit=st.integers(0, 7))
    def flipped(pos, bit):
        store.write_bytes(_flip(raw, pos, bit))
        try:
            attempt(f"byte {pos} bit {bit} flipped")
        finally:
            _restore(store, raw)

    flipped()


SWEEP_TOML = b"""function = "tasks.py:train"
repeats = 2
seed = 0
scheduler = "serial"

[defaults]
epochs = 2

[grid]
lr = [0.1, 0.01]
rule = ["backprop", "feedback_alignment"]
"""


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_sweep_file(tmp_path, suffix):
    path = tmp_path / f"sweep{suffix}"
    if suffix == ".json":
        import json

        raw = json.dumps({"function": "tasks.py:train", "repeats": 2, "seed": 0,
                          "scheduler": "serial", "defaults": {"epochs": 2},
                          "grid": {"lr": [0.1, 0.01], "rule": ["backprop", "fa"]}}).encode()
    else:
        raw = SWEEP_TOML
    path.write_bytes(raw)
    (tmp_path / "tasks.py").write_text("def train(config, seed):\n    return {}\n")
    load_sweep_file(path)  # the intact file loads

    def attempt(what):
        try:
            load_sweep_file(path)
        except (SweepError, ValueError, TypeError) as exc:
            assert str(path) in str(exc) or path.name in str(exc), f"{what}: {exc}"
        except OSError as exc:
            raise AssertionError(f"{what}: raised {type(exc).__name__}: {exc}") from None
        else:  # a TOML file cut at a line boundary can be a smaller, valid sweep file
            assert "truncated" in what or "flipped" in what, f"{what}: accepted"
        tally.FILES["sweep file"] += 1

    for what, damage in _damages(raw):
        damage(path)
        attempt(what)
        _restore(path, raw)

    @FLIPS
    @given(pos=st.integers(0, len(raw) - 1), bit=st.integers(0, 7))
    def flipped(pos, bit):
        path.write_bytes(_flip(raw, pos, bit))
        try:
            attempt(f"byte {pos} bit {bit} flipped")
        finally:
            _restore(path, raw)

    flipped()
