"""SIGKILL a training run at random updates of a checkpoint-every-update run: every restart
resumes where the last complete checkpoint was written and continues bit-identically."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

import bionp as bnp
from bionp.checkpoint import read_checkpoint, save_checkpoint

from _examples import ROOT
from _killable_run import EPOCHS, make_trainer, params_hash

SCRIPT = os.path.join(ROOT, "tests", "_killable_run.py")
KILLS = 20


def _reference(folder):
    """Per update: the parameter hash and a checkpoint of the uninterrupted run."""
    hashes = {}

    def record(trainer):
        hashes[trainer.n_steps] = params_hash(trainer.net)
        save_checkpoint(os.path.join(folder, f"{trainer.n_steps}.npz"), trainer.net,
                        optimizer=trainer.optimizer, rule=trainer.rule, trainer=trainer)

    trainer, x, y = make_trainer(after_step=record)
    trainer.fit(x, y, epochs=EPOCHS)
    return hashes, params_hash(trainer.net)


def _same_checkpoint(path, ref_path):
    """Same arrays (network, optimiser, rule, layers) and the same trainer position and
    generators (the history's clock readings aside)."""
    meta, arrays = read_checkpoint(path)
    ref_meta, ref_arrays = read_checkpoint(ref_path)
    assert set(arrays) == set(ref_arrays)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], ref_arrays[k], err_msg=k)
    for key in ("rng", "epoch", "step", "n_steps", "epoch_rng", "epoch_shape"):
        assert meta["trainer"][key] == ref_meta["trainer"][key], key
    assert meta["trainer"]["history"]["loss"] == ref_meta["trainer"]["history"]["loss"]
    assert meta["rule"] == ref_meta["rule"] and meta["optimizer"] == ref_meta["optimizer"]


def _step_of(path) -> int:
    return read_checkpoint(path)[0]["trainer"]["n_steps"] if os.path.exists(path) else 0


def test_sigkill_at_random_updates_resumes_bit_identically(tmp_path):
    with bnp.backend("numpy"):
        ref_dir = tmp_path / "reference"
        ref_dir.mkdir()
        ref_hashes, ref_final = _reference(str(ref_dir))
    total = max(ref_hashes)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ckpt = str(run_dir / "ckpt.npz")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               BIONP_BACKEND="numpy", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               BIONP_PROGRESS="0")
    chooser = random.Random(26)
    targets = sorted(chooser.sample(range(2, total - 1), KILLS))
    kills = resumed = identical = 0
    final = None
    t0 = time.perf_counter()
    while True:
        start = _step_of(ckpt)
        proc = subprocess.Popen([sys.executable, SCRIPT, ckpt], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        target = next((t for t in targets if t > start), None) if kills < KILLS else None
        first, ok = None, True
        for line in proc.stdout:
            word, *rest = line.split()
            if word == "done":
                final = rest[0]
                break
            step = int(rest[0])
            first = step if first is None else first
            ok = ok and rest[1] == ref_hashes[step]
            if target is not None and step >= target:
                time.sleep(chooser.uniform(0.0, 0.004))  # lands anywhere: a step, a write
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        if start > 0 or kills > 0:  # a restart after a kill
            resumed += first == start + 1 or (first is None and final is not None)
            identical += ok
        if target is None:
            assert proc.returncode == 0, err
            break
        assert proc.returncode == -signal.SIGKILL, err
        kills += 1
        # whatever the kill interrupted, the file on disk is a complete, correct checkpoint
        _same_checkpoint(ckpt, str(ref_dir / f"{_step_of(ckpt)}.npz"))
    seconds = time.perf_counter() - t0
    print(f"{kills} SIGKILLs at updates chosen from 1..{total}: {resumed}/{kills} resumed at the "
          f"checkpointed update, {identical}/{kills} bit-identical; {seconds:.1f} s")
    assert kills == KILLS and resumed == KILLS and identical == KILLS
    assert final == ref_final
    assert os.listdir(run_dir) == ["ckpt.npz"]  # no temporary file of a killed write is left
