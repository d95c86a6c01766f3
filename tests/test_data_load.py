"""bionp.data.load: search order, verification, cache, bundled subset, torchvision fetch, errors."""

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import bionp as bnp
from _data_files import (
    cifar_binary,
    cifar_py2_pickle,
    data_env,
    images,
    labels,
    malicious_pickle,  # noqa: F401
    md5,
    patch_files,
    snapshot,
    write_idx,
    write_mnist_like,
)
from bionp.data import (
    ChecksumError,
    DataFormatError,
    DatasetNotFoundError,
    UnknownDatasetError,
    UnsafePickleError,
    loading,
    locate,
)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------- bundled subset
def test_small_subset_offline(xp, data_env, monkeypatch):
    x, y = bnp.data.load("fashion-mnist-small")
    assert x.shape == (10000, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert bnp.get_array_module(x) is xp and bnp.get_array_module(y) is xp
    xt, yt = bnp.data.load("fashion-mnist-small", split="test", flatten=False, dtype="float64")
    assert xt.shape == (2000, 28, 28) and xt.dtype == np.float64
    yh = bnp.asnumpy(y)
    assert np.bincount(yh).tolist() == [1000] * 10
    assert np.bincount(bnp.asnumpy(yt)).tolist() == [200] * 10
    xh = bnp.asnumpy(x)
    assert xh.min() == 0.0 and xh.max() == 1.0
    assert not (data_env.exists() and any(data_env.iterdir()))  # nothing cached for the bundled set


def test_small_subset_payload_checksums():
    from bionp.data.bundled_subset import BUNDLED_FILE, BUNDLED_MD5

    assert BUNDLED_FILE.stat().st_size < 6_000_000
    assert (BUNDLED_FILE.parent / "LICENSE-fashion-mnist.txt").is_file()
    with np.load(BUNDLED_FILE, allow_pickle=False) as z:
        for k, v in BUNDLED_MD5.items():
            assert hashlib.md5(z[k].tobytes()).hexdigest() == v


def test_small_subset_bad_checksum(monkeypatch):
    from bionp.data import bundled_subset

    monkeypatch.setitem(bundled_subset.BUNDLED_MD5, "y_test", "0" * 32)
    monkeypatch.setattr(bundled_subset, "_MEMO", {})
    with pytest.raises(ChecksumError, match="y_test: checksum mismatch"):
        bnp.data.load("fashion-mnist-small", split="test")


# ---------------------------------------------------------------------------------- names and info
def test_unknown_name_and_split():
    with pytest.raises(
        UnknownDatasetError,
        match=(
            "unknown dataset 'emnist'.*'mnist', 'fashion-mnist', 'cifar10', 'fashion-mnist-small'"
        ),
    ):
        bnp.data.load("emnist")
    with pytest.raises(UnknownDatasetError, match="unknown split 'val'.*'train' or 'test'"):
        bnp.data.load("fashion-mnist-small", split="val")
    with pytest.raises(TypeError, match="dataset name must be a string"):
        bnp.data.load_info(3)
    with pytest.raises(ValueError, match="unsupported default dtype"):
        bnp.data.load("fashion-mnist-small", dtype="int8")
    with pytest.raises(TypeError, match="download must be"):
        bnp.data.load("mnist", download="yes")


def test_load_info():
    info = bnp.data.load_info("cifar10")
    assert info["shape"] == (3, 32, 32) and info["n_features"] == 3072
    assert info["n_train"] == 50000 and info["n_test"] == 10000 and len(info["classes"]) == 10
    assert info["files"]["binary"]["train"]["data_batch_1.bin"] is None  # structure-only
    f = bnp.data.load_info("Fashion_MNIST")
    assert (
        f["name"] == "fashion-mnist" and f["license"] == "MIT" and f["classes"][0] == "T-shirt/top"
    )
    assert f["files"]["train"]["train-images-idx3-ubyte"] == "f4a8712d7a061bf5bd6d2ca38dc4d50a"
    assert set(bnp.data.available_datasets()) == {
        "mnist",
        "fashion-mnist",
        "cifar10",
        "fashion-mnist-small",
    }


def test_registry_checksums_are_well_formed():
    import re

    from bionp.data.registry import DATASETS

    for spec in DATASETS.values():
        if spec.kind == "cifar10":
            groups = [fs for per in spec.files.values() for fs in per.values()]
        else:
            groups = list(spec.files.values())
        for files in groups:
            for f in files:
                assert f.md5 is None or re.fullmatch(r"[0-9a-f]{32}", f.md5), (spec.name, f)
    mnist = DATASETS["mnist"].files
    assert [f.size for f in mnist["train"]] == [16 + 60000 * 784, 8 + 60000]
    assert [f.size for f in mnist["test"]] == [16 + 10000 * 784, 8 + 10000]


# ------------------------------------------------------------------- IDX datasets from small files
@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_root_and_cache(data_env, monkeypatch, tmp_path, gz):
    md5s = write_mnist_like(tmp_path / "data" / "mnist", gz=gz)
    patch_files(monkeypatch, "mnist", md5s)
    x, y = bnp.data.load("mnist", root=tmp_path / "data")
    assert x.shape == (30, 784) and y.tolist() == labels(30).tolist()
    np.testing.assert_array_equal(x * 255, images(30).reshape(30, -1).astype(np.float32))
    cached = sorted(p.name for p in (data_env / "mnist").iterdir())
    assert any(n.endswith("-images.npy") for n in cached) and "train.cache.json" in cached
    # repeat load: memory-mapped cache, the raw files are not read again
    monkeypatch.setattr(loading, "_read_source", lambda *a: pytest.fail("raw files read again"))
    u8, lab = bnp.data.load_uint8("mnist", root=tmp_path / "data")
    assert isinstance(u8, np.memmap) and u8.shape == (30, 28, 28)
    x2, _ = bnp.data.load("mnist", root=tmp_path / "data", flatten=False)
    assert x2.shape == (30, 28, 28)


def test_files_directly_in_root_and_bionp_data(data_env, monkeypatch, tmp_path):
    md5s = write_mnist_like(tmp_path / "flat")  # no dataset sub-folder
    patch_files(monkeypatch, "mnist", md5s)
    xt, yt = bnp.data.load("mnist", split="test", root=tmp_path / "flat")
    assert xt.shape == (12, 784)
    monkeypatch.setenv("BIONP_DATA", str(tmp_path / "flat"))
    xt2, _ = bnp.data.load("mnist", split="test")
    np.testing.assert_array_equal(xt, xt2)


def test_torchvision_layout_and_search_order(data_env, monkeypatch, tmp_path):
    a = write_mnist_like(tmp_path / "first" / "MNIST" / "raw", seed=1)
    b = write_mnist_like(tmp_path / "second" / "mnist", seed=2)
    patch_files(monkeypatch, "mnist", {**a})  # only the files of "first" verify
    monkeypatch.setenv("BIONP_DATA", str(tmp_path / "second"))
    x, _ = bnp.data.load("mnist", root=tmp_path / "first")  # root wins over BIONP_DATA
    np.testing.assert_array_equal(x * 255, images(30, seed=1).reshape(30, -1).astype(np.float32))
    with pytest.raises(ChecksumError):  # BIONP_DATA's files are not the registered ones
        bnp.data.load("mnist")
    assert b  # written


def test_damaged_cache_is_rebuilt_from_source(data_env, monkeypatch, tmp_path):
    patch_files(monkeypatch, "mnist", write_mnist_like(tmp_path / "mnist"))
    x1, _ = bnp.data.load("mnist", root=tmp_path)
    (npy,) = [p for p in (data_env / "mnist").glob("train-*-images.npy")]
    npy.write_bytes(npy.read_bytes()[:-100])  # truncated cache file
    x2, _ = bnp.data.load("mnist", root=tmp_path)
    np.testing.assert_array_equal(x1, x2)
    assert np.load(npy, mmap_mode="r").shape == (30, 28, 28)  # repaired


def test_changed_source_invalidates_cache(data_env, monkeypatch, tmp_path):
    root = tmp_path / "d"
    patch_files(monkeypatch, "mnist", write_mnist_like(root / "mnist", seed=1))
    x1, _ = bnp.data.load("mnist", root=root)
    patch_files(monkeypatch, "mnist", write_mnist_like(root / "mnist", seed=5, n_train=20))
    os.utime(root / "mnist" / "train-images-idx3-ubyte.gz", ns=(1, 1))
    x2, _ = bnp.data.load("mnist", root=root)
    assert x2.shape == (20, 784)
    np.testing.assert_array_equal(x2 * 255, images(20, seed=5).reshape(20, -1).astype(np.float32))
    npys = [
        p
        for p in (data_env / "mnist").iterdir()
        if p.name.startswith("train-") and p.suffix == ".npy"
    ]
    assert len(npys) == 2  # the stale pair was removed, the new pair written


def _bad_variants(folder, good_md5):
    """Yield (description, writer) that each break the train images file."""
    path = folder / "train-images-idx3-ubyte.gz"
    import gzip

    good = gzip.decompress(path.read_bytes())
    yield (
        "truncated",
        lambda: path.write_bytes(gzip.compress(good[:-50])),
        DataFormatError,
        "truncated",
    )
    yield (
        "wrong magic",
        lambda: path.write_bytes(gzip.compress(b"\x00\x01" + good[2:])),
        DataFormatError,
        "magic",
    )
    changed = bytearray(good)
    changed[-1] ^= 0xFF
    yield (
        "wrong checksum",
        lambda: path.write_bytes(gzip.compress(bytes(changed))),
        ChecksumError,
        f"expected MD5 {good_md5}.*found {md5(bytes(changed))}",
    )


def test_bad_files_error_and_leave_cache_untouched(data_env, monkeypatch, tmp_path):
    root = tmp_path / "d"
    md5s = write_mnist_like(root / "mnist")
    patch_files(monkeypatch, "mnist", md5s)
    x_good, _ = bnp.data.load("mnist", root=root)
    before = snapshot(data_env)
    assert before
    for what, damage, exc, msg in list(
        _bad_variants(root / "mnist", md5s["train-images-idx3-ubyte"])
    ):
        damage()
        with pytest.raises(exc, match=msg) as info:
            bnp.data.load("mnist", root=root)
        assert "train-images-idx3-ubyte.gz" in str(info.value), what
        assert snapshot(data_env) == before, f"cache changed after a {what} file"
    # and with an empty cache, a bad file writes nothing at all
    empty = tmp_path / "empty-cache"
    with pytest.raises(ChecksumError):
        bnp.data.load("mnist", root=root, cache_dir=empty)
    assert snapshot(empty) == {}


def test_labels_images_count_mismatch(data_env, monkeypatch, tmp_path):
    root = tmp_path / "d" / "mnist"
    md5s = write_mnist_like(root)
    md5s["train-labels-idx1-ubyte"] = write_idx(
        root / "train-labels-idx1-ubyte.gz", labels(29), gz=True
    )
    patch_files(monkeypatch, "mnist", md5s)
    with pytest.raises(DataFormatError, match="30 images but .* 29 labels"):
        bnp.data.load("mnist", root=root)


def test_real_registry_rejects_small_files(data_env, tmp_path):
    write_mnist_like(tmp_path / "mnist")
    with pytest.raises(DataFormatError, match="expected 47040016 bytes"):  # size known for MNIST
        bnp.data.load("mnist", root=tmp_path)


# ---------------------------------------------------------------------------------------- CIFAR-10
def _write_cifar(folder, fmt, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    md5s, allx, ally = {}, [], []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = images(n, (3072,), seed=10 + i).reshape(n, 3072)
        labs = (np.arange(n) + i) % 10
        raw = cifar_py2_pickle(data, labs) if fmt == "python" else cifar_binary(data, labs)
        fname = name if fmt == "python" else name + ".bin"
        (folder / fname).write_bytes(raw)
        md5s[fname] = md5(raw)
        allx.append(data)
        ally.append(labs)
    return md5s, allx, ally


@pytest.mark.parametrize(
    "fmt,sub", [("python", "cifar-10-batches-py"), ("binary", "cifar-10-batches-bin")]
)
def test_load_cifar10(data_env, monkeypatch, tmp_path, fmt, sub):
    md5s, allx, ally = _write_cifar(tmp_path / sub, fmt)
    patch_files(monkeypatch, "cifar10", md5s)
    x, y = bnp.data.load("cifar10", root=tmp_path)
    assert x.shape == (20, 3072)
    np.testing.assert_array_equal(x * 255, np.concatenate(allx[:5]).astype(np.float32))
    np.testing.assert_array_equal(y, np.concatenate(ally[:5]))
    xt, yt = bnp.data.load("cifar10", split="test", root=tmp_path, flatten=False)
    assert xt.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(yt, ally[5])


def test_malicious_cifar_batch_leaves_cache_untouched(data_env, monkeypatch, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    md5s, _, _ = _write_cifar(folder, "python")
    patch_files(monkeypatch, "cifar10", md5s)
    bnp.data.load("cifar10", split="test", root=tmp_path)
    before = snapshot(data_env)
    sentinel = tmp_path / "pwned"
    (folder / "test_batch").write_bytes(malicious_pickle(sentinel))
    with pytest.raises(UnsafePickleError, match="test_batch: refused to unpickle"):
        bnp.data.load("cifar10", split="test", root=tmp_path)
    assert not sentinel.exists()
    assert snapshot(data_env) == before


# ------------------------------------------------------------------ not found / offline / download
def test_not_found_lists_the_ways(data_env, tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError) as info:
        bnp.data.load("fashion-mnist")
    msg = str(info.value)
    for needle in (
        "root=",
        "BIONP_DATA",
        str(data_env / "fashion-mnist"),
        "apt-get install dataset-fashion-mnist",
        "bionp[datasets]",
        "BIONP_OFFLINE",
        "fashion-mnist-small",
        "train-images-idx3-ubyte",
    ):
        assert needle in msg, needle


def test_root_named_is_used_or_refused(data_env, monkeypatch, tmp_path):
    """A root the user named is never passed over for BIONP_DATA or the cache (issue 24)."""
    from bionp.data import DataRootError

    elsewhere = tmp_path / "elsewhere"
    md5s = write_mnist_like(elsewhere / "mnist")
    patch_files(monkeypatch, "mnist", md5s)
    monkeypatch.setenv("BIONP_DATA", str(elsewhere))
    bnp.data.load("mnist")  # found through BIONP_DATA, and cached
    before = snapshot(data_env)
    a_file = tmp_path / "afile.txt"
    a_file.write_text("not a folder")
    (tmp_path / "empty").mkdir()
    cases = [
        (tmp_path / "nowhere", DatasetNotFoundError, "no such folder"),
        (str(tmp_path / "nowhere"), DatasetNotFoundError, "no such folder"),
        (a_file, DataRootError, "is a file, not a folder"),
        (tmp_path / "empty", DatasetNotFoundError, "does not hold dataset 'mnist'"),
        (3, DataRootError, "root must be the path of a folder"),
        ("", DataRootError, "root must be the path of a folder"),
    ]
    for root, exc, msg in cases:
        for fn in (bnp.data.load, bnp.data.load_uint8, bnp.data.load_images):
            with pytest.raises(exc, match=msg) as info:
                fn("mnist", root=root)
            assert "root" in str(info.value)
            if not isinstance(root, int) and str(root):
                assert str(root) in str(info.value)
    assert snapshot(data_env) == before  # nothing written, nothing removed
    with pytest.raises(DataRootError, match="bundled"):
        bnp.data.load("fashion-mnist-small", root=tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        bnp.data.load("fashion-mnist-small", root=tmp_path / "nowhere")
    x, _ = bnp.data.load("mnist", root=elsewhere)  # a good root is used
    assert x.shape == (30, 784)


def test_without_torchvision_error_and_no_import(data_env, monkeypatch):
    monkeypatch.setenv("BIONP_OFFLINE", "0")
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(DatasetNotFoundError, match="torchvision is not importable"):
        bnp.data.load("mnist")


def test_import_never_loads_torchvision(tmp_path):
    code = (
        "import sys, bionp, bionp.data as d; d.load('fashion-mnist-small'); d.load_info('cifar10');"
        "bad=[m for m in ('torchvision','torch','scipy','matplotlib') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "BIONP_CACHE": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _fake_torchvision(monkeypatch, tmp_path, corrupt=False):
    """A fake ``torchvision.datasets`` whose classes simulate only the network fetch: they copy
    "upstream" files into ``root`` in torchvision's layout (IDX: .gz and extracted copies)."""
    calls = []
    upstream = tmp_path / "upstream"
    content = {
        "FashionMNIST": write_mnist_like(upstream / "FashionMNIST", seed=7),
        "MNIST": write_mnist_like(upstream / "MNIST", seed=8, gz=False),
    }
    content["CIFAR10"] = _write_cifar(upstream / "CIFAR10", "python")[0]

    def make(name, dest):
        class Fake:
            def __init__(self, root, train=True, download=False, **kw):
                calls.append((name, root, train, download))
                raw = Path(root) / dest
                raw.mkdir(parents=True, exist_ok=True)
                for f in (upstream / name).iterdir():
                    (raw / f.name).write_bytes(f.read_bytes())
                if corrupt and name == "FashionMNIST":
                    p = raw / "t10k-labels-idx1-ubyte.gz"
                    p.write_bytes(p.read_bytes()[:-12])
                if name == "CIFAR10":
                    (Path(root) / "cifar-10-python.tar.gz").write_bytes(b"archive")

        Fake.__name__ = name
        return Fake

    tv = types.ModuleType("torchvision")
    ds = types.ModuleType("torchvision.datasets")
    ds.FashionMNIST = make("FashionMNIST", "FashionMNIST/raw")
    ds.MNIST = make("MNIST", "MNIST/raw")
    ds.CIFAR10 = make("CIFAR10", "cifar-10-batches-py")
    tv.datasets = ds
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", ds)
    return calls, content


def test_download_through_torchvision_is_verified_and_cached(data_env, monkeypatch, tmp_path):
    calls, content = _fake_torchvision(monkeypatch, tmp_path)
    content = content["FashionMNIST"]
    monkeypatch.setenv("BIONP_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError, match="download is off"):
        bnp.data.load("fashion-mnist")
    assert calls == []
    patch_files(monkeypatch, "fashion-mnist", content)
    x, y = bnp.data.load("fashion-mnist", download=True)
    assert x.shape == (30, 784) and [c[3] for c in calls] == [True, True]
    np.testing.assert_array_equal(x * 255, images(30, seed=7).reshape(30, -1).astype(np.float32))
    kept = sorted(p.name for p in (data_env / "fashion-mnist").iterdir())
    assert "t10k-labels-idx1-ubyte.gz" in kept or "t10k-labels-idx1-ubyte" in kept
    assert not any(n.startswith(".download-") for n in kept)  # the temporary folder is gone
    # later loads are offline: the verified files are in the cache
    calls.clear()
    monkeypatch.setitem(sys.modules, "torchvision", None)
    xt, _ = bnp.data.load("fashion-mnist", split="test", download=False)
    assert xt.shape == (12, 784) and calls == []


@pytest.mark.parametrize("name,cls,n_train", [("mnist", "MNIST", 30), ("cifar10", "CIFAR10", 20)])
def test_download_mnist_and_cifar10(data_env, monkeypatch, tmp_path, name, cls, n_train):
    calls, content = _fake_torchvision(monkeypatch, tmp_path)
    patch_files(monkeypatch, name, content[cls])
    monkeypatch.setenv("BIONP_OFFLINE", "0")  # download=None: allowed
    x, y = bnp.data.load(name)
    assert x.shape[0] == n_train and {c[0] for c in calls} == {cls}
    kept = {p.name for p in (data_env / name).iterdir()}
    assert set(content[cls]) <= kept  # the verified raw files, moved into the cache
    assert "cifar-10-python.tar.gz" not in kept


def test_corrupt_download_is_rejected_and_not_cached(data_env, monkeypatch, tmp_path):
    _, content = _fake_torchvision(monkeypatch, tmp_path, corrupt=True)
    patch_files(monkeypatch, "fashion-mnist", content["FashionMNIST"])
    monkeypatch.setenv("BIONP_OFFLINE", "0")
    with pytest.raises(DataFormatError, match="t10k-labels-idx1-ubyte"):
        bnp.data.load("fashion-mnist")
    leftovers = snapshot(data_env)
    assert not any("idx" in k for k in leftovers), leftovers  # nothing moved into the cache


# ------------------------------------------------------------------- cache dir and system packages
def test_cache_dir_policy(monkeypatch, tmp_path):
    monkeypatch.setenv("BIONP_CACHE", str(tmp_path / "c"))
    assert bnp.data.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BIONP_CACHE")
    assert bnp.data.cache_dir() == REPO / "data_cache"  # running from the source checkout
    fake_pkg = tmp_path / "site" / "bionp" / "data"
    fake_pkg.mkdir(parents=True)
    monkeypatch.setattr(locate, "__file__", str(fake_pkg / "locate.py"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bnp.data.cache_dir() == tmp_path / "xdg" / "bionp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert bnp.data.cache_dir() == Path.home() / ".cache" / "bionp"


def test_system_dataset_package_folder(data_env, monkeypatch, tmp_path):
    system = tmp_path / "usr-share-datasets"
    patch_files(monkeypatch, "fashion-mnist", write_mnist_like(system / "fashion-mnist"))
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (str(system),))
    x, _ = bnp.data.load("fashion-mnist", split="test")
    assert x.shape == (12, 784)


def test_unwritable_cache_warns_and_still_loads(data_env, monkeypatch, tmp_path):
    patch_files(monkeypatch, "mnist", write_mnist_like(tmp_path / "mnist"))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="could not write the cache"):
        x, _ = bnp.data.load("mnist", root=tmp_path, cache_dir=blocker / "cache")
    assert x.shape == (30, 784)


# -------------------------------------------------------------------------- the full Fashion-MNIST
def test_full_fashion_mnist(full_data_root, data_env):
    readme = Path(full_data_root) / "README.md"
    table = {}
    for line in readme.read_text().splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) == 3 and parts[0].endswith("-ubyte"):
            table[parts[0]] = parts[1]
    assert len(table) == 4
    info = bnp.data.load_info("fashion-mnist")["files"]
    assert {**info["train"], **info["test"]} == table
    x, y = bnp.data.load("fashion-mnist", root=full_data_root)
    xt, yt = bnp.data.load("fashion-mnist", split="test", root=full_data_root)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    man = json.loads((data_env / "fashion-mnist" / "train.cache.json").read_text())
    assert man["md5"] == {
        k: table[k] for k in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    }
    u8, lab = bnp.data.load_uint8("fashion-mnist", split="test", root=full_data_root)
    head = b"\x00\x00\x08\x03" + (10000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    assert md5(head + np.ascontiguousarray(u8).tobytes()) == table["t10k-images-idx3-ubyte"]
    assert (
        md5(b"\x00\x00\x08\x01" + (10000).to_bytes(4, "big") + lab.tobytes())
        == table["t10k-labels-idx1-ubyte"]
    )
