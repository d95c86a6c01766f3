"""Run a task over configs × repeats: serially, on a local Dask cluster, or on a remote one.

Dask is imported only inside the functions that use it, so ``import bionp.sweep``
works (and the serial path runs) without the ``distributed`` extra.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import traceback
from typing import Any, Callable, Iterable, Mapping, Sequence

from bionp.sweep.configs import (
    SweepConfigError,
    check_configs,
    check_params,
    config_hash,
    normalize_config,
    rng_state,
    task_seed,
)
from bionp.sweep._interrupt import _own_workers_ignore_ctrl_c, _quiet_dask, _silence_worker
from bionp.sweep.store import ResultStore, latest_records, new_header, read_store

__all__ = ["run", "cached", "SweepError", "SchedulerUnreachableError", "DaskUnavailableError",
           "BLAS_ENV", "local_cluster", "gpu_cluster", "execute_task"]

#: Environment that limits BLAS/OpenMP pools and bionp's random-number threads to one thread
#: (set in each worker process).
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1", "BIONP_NUM_THREADS": "1"}


class SweepError(RuntimeError):
    """A sweep cannot be started or continued."""


class DaskUnavailableError(SweepError, ImportError):
    """A cluster was asked for but ``dask.distributed`` is not installed."""


class SchedulerUnreachableError(SweepError, ConnectionError):
    """No Dask scheduler answered at the given address within the timeout."""


# -- the task, as run on a worker ---------------------------------------------------------------

def _versions() -> dict:
    import numpy as np

    from bionp import __version__

    return {"bionp": __version__, "numpy": np.__version__, "python": platform.python_version()}


class _ThreadLimits:
    """BLAS pools (threadpoolctl, when installed) and bionp's generator threads limited to
    ``n`` for one task; :meth:`restore_original_limits` undoes both."""

    def __init__(self, n: int):
        from bionp import random as bionp_random

        self._random = bionp_random
        self._random_threads = bionp_random.get_num_threads()
        bionp_random.set_num_threads(n)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            self._blas = None
        else:
            self._blas = threadpool_limits(limits=n)

    def restore_original_limits(self) -> None:
        self._random.set_num_threads(self._random_threads)
        if self._blas is not None:
            self._blas.restore_original_limits()


def _blas_limits(blas_threads):
    if blas_threads is None:
        return None
    return _ThreadLimits(int(blas_threads))


def execute_task(fn: Callable, config: dict, seed: int, blas_threads: int | None = 1) -> dict:
    """Run ``fn(config, seed)``; the worker's half of a record (never raises ``Exception``).

    The metrics are checked (a dict, JSON-serialisable; NumPy scalars and arrays
    are converted) here on the worker, so an error carries the worker's traceback.
    A backend or dtype the task selects (``bionp.use``, ``bionp.set_dtype``) is
    switched back afterwards, so no task inherits another's choice.
    """
    import json

    from bionp.sweep.configs import _jsonable

    import importlib

    backend_module = importlib.import_module("bionp.backend")
    t0, c0 = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {"status": "ok", "metrics": {}, "error": None, "traceback": None}
    state = dict(backend_module._global)  # a task's bionp.use()/set_dtype() ends with it
    limits = _blas_limits(blas_threads)
    try:
        metrics = fn(dict(config), seed)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"the task function must return a dict of metrics, got "
                            f"{type(metrics).__name__}: {metrics!r:.80}")
        out["metrics"] = json.loads(json.dumps(dict(metrics), default=_jsonable))
    except Exception as exc:  # recorded, the sweep goes on; KeyboardInterrupt propagates
        out.update(status="error", metrics={}, error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc())
    finally:
        if limits is not None:
            limits.restore_original_limits()
        backend_module._global.update(state)
    out.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
               host=socket.gethostname(), pid=os.getpid(), versions=_versions())
    return out


_PROCESS_CACHE: dict = {}


def cached(key, make: Callable[[], Any]):
    """``make()`` once per process and key, then the same object (e.g. a data set in each worker).

    A task function pickled to a worker cannot keep a cache in its own module's
    globals (they travel with it); this one lives in the worker process::

        def task(config, seed):
            x, y = bionp.sweep.cached(("fmnist", "train"),
                                      lambda: bionp.data.load("fashion-mnist", split="train"))
    """
    try:
        return _PROCESS_CACHE[key]
    except KeyError:
        value = _PROCESS_CACHE[key] = make()
        return value


# -- clusters -----------------------------------------------------------------------------------

def _import_distributed():
    try:
        import distributed  # noqa: F401
        from dask import distributed as dd
    except ImportError:
        return None
    return dd


def local_cluster(n_workers: int | None = None, *, env: Mapping[str, str] | None = None,
                  dashboard_address: str | None = ":0", **kwargs):
    """A ``dask.distributed.LocalCluster``: ``n_workers`` single-threaded worker processes.

    ``n_workers`` defaults to the number of cores; each worker process gets
    :data:`BLAS_ENV` (one BLAS/OpenMP thread) plus ``env``. Extra keyword
    arguments go to ``LocalCluster``.
    """
    dd = _import_distributed()
    if dd is None:
        raise DaskUnavailableError("a local Dask cluster needs dask.distributed: "
                                   "pip install 'bionp[distributed]' (or use scheduler='serial')")
    n = int(n_workers or os.cpu_count() or 1)
    if n < 1:
        raise SweepError(f"n_workers must be >= 1, got {n_workers}")
    return dd.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           env={**BLAS_ENV, **(env or {})}, dashboard_address=dashboard_address,
                           **kwargs)


def gpu_cluster(devices: Sequence[int | str] | None = None, *, env: Mapping[str, str] | None = None,
                dashboard_address: str | None = ":0"):
    """A local Dask cluster with one single-threaded worker process per GPU.

    Worker ``i`` sees only GPU ``devices[i]`` (``CUDA_VISIBLE_DEVICES``) and
    starts with ``BIONP_BACKEND=cupy``, so bionp's default backend there is
    CuPy on its own device (a task may still call ``bionp.use("cupy")``).

    Parameters
    ----------
    devices : list of int or str, optional
        GPU ids; default: those in ``$CUDA_VISIBLE_DEVICES``, else every GPU
        CuPy sees (CuPy is asked only when ``devices`` is not given).
    env : dict, optional
        More environment variables for every worker.
    """
    dd = _import_distributed()
    if dd is None:
        raise DaskUnavailableError("a GPU worker pool needs dask.distributed: "
                                   "pip install 'bionp[distributed]'")
    if devices is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            devices = [d.strip() for d in visible.split(",") if d.strip()]
        else:
            from bionp.backend import backend, cupy_available

            devices = []
            if cupy_available():
                with backend("cupy") as cp:
                    devices = list(range(cp.cuda.runtime.getDeviceCount()))
    devices = [str(d) for d in devices]
    if not devices:
        raise SweepError("no GPU to start workers on: CuPy sees none and CUDA_VISIBLE_DEVICES is "
                         "empty; pass devices=[0, 1, ...] or use the CPU (scheduler=None)")
    if len(set(devices)) != len(devices):
        raise SweepError(f"devices must be distinct, got {devices}")
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {
        f"gpu-{d}": {"cls": Nanny, "options": {
            "nthreads": 1,
            "env": {**BLAS_ENV, "CUDA_VISIBLE_DEVICES": d, "BIONP_BACKEND": "cupy", **(env or {})},
        }}
        for d in devices
    }
    options = ({"dashboard": False, "dashboard_address": ":0"} if dashboard_address is None
               else {"dashboard_address": dashboard_address})
    scheduler = {"cls": Scheduler, "options": options}
    return SpecCluster(workers=workers, scheduler=scheduler, name="bionp-gpu")


def _connect(scheduler: str, timeout: float):
    dd = _import_distributed()
    if dd is None:
        raise DaskUnavailableError(
            f"scheduler={scheduler!r} needs dask.distributed, which is not installed: "
            "pip install 'bionp[distributed]', or pass scheduler='serial'")
    is_file = scheduler.endswith(".json") and "://" not in scheduler
    if is_file and not os.path.exists(scheduler):
        raise SchedulerUnreachableError(f"scheduler file {scheduler!r} does not exist")
    try:
        if is_file:
            return dd.Client(scheduler_file=scheduler, timeout=timeout)
        return dd.Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachableError(
            f"could not connect to the Dask scheduler at {scheduler!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}). Is `dask scheduler` running there and the port "
            "reachable? Check the address (tcp://HOST:PORT), raise timeout=, or run locally "
            "with scheduler=None (a local cluster) or scheduler='serial'.") from None


# -- the driver ---------------------------------------------------------------------------------

def _progress_bar(progress, total: int, initial: int):
    enabled = progress if progress is not None else (
        sys.stderr.isatty() and os.environ.get("BIONP_PROGRESS", "1") != "0")
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="sweep", unit="task")




def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"bionp.sweep: {msg}", file=sys.stderr, flush=True)


def _resolve_params(fn, params):
    if params is None:
        params = getattr(fn, "params", None)
    if params is not None and not isinstance(params, str):
        params = list(params)
    return params


def run(fn: Callable[[dict, int], Mapping[str, Any]], configs: Iterable[Mapping[str, Any]], *,
        store: str | os.PathLike | None = None, repeats: int = 1, rng=0,
        client=None, scheduler: str | None = None, n_workers: int | None = None,
        params: Iterable[str] | None = None, defaults: Mapping[str, Any] | None = None,
        retry_errors: bool = True, blas_threads: int | None = 1, progress: bool | None = None,
        timeout: float = 30.0, callback: Callable[[dict], None] | None = None,
        verbose: bool = True) -> list[dict]:
    """Run ``fn(config, seed)`` for every config and repeat; store one record per finished task.

    Parameters
    ----------
    fn : callable ``fn(config: dict, seed: int) -> dict``
        The task. Returns a dict of JSON-able metrics (NumPy scalars/arrays are
        converted). It must take all its randomness from ``seed`` (e.g.
        ``bionp.nn.MLP(..., rng=seed)``) and choose its backend/dtype itself:
        worker processes start with bionp's defaults. With a cluster it is
        pickled (cloudpickle) and run in other processes, so it should not rely
        on the driver's global state. An exception inside ``fn`` is recorded
        (``status="error"`` with its traceback) and the sweep goes on.
    configs : list of dict
        From :func:`grid` or written out. Values must be JSON-serialisable.
    store : path, optional
        JSON-lines result store (see :mod:`bionp.sweep.store`). Tasks already
        recorded there with ``status="ok"`` are skipped (resume). ``None``:
        keep the records in memory only.
    repeats : int
        Runs per config, each with its own seed.
    rng : int, bionp.random.Generator or None
        Root of the per-task seeds (:func:`bionp.sweep.configs.task_seed`): the
        seed of ``(config, repeat)`` depends on ``rng``, the config and the
        repeat index only, so results are identical whatever the number of
        workers and the order of completion. The root's entropy is written in
        the store's header: resuming with another ``rng`` is an error, and
        ``rng=None`` on an existing store reuses its entropy.
    client : dask.distributed.Client, optional
        Run on this client's cluster (it is not closed afterwards).
    scheduler : str, optional
        ``None`` (default): a local Dask cluster with ``n_workers`` (default:
        number of cores) single-threaded worker processes, BLAS limited to one
        thread each, and its dashboard address printed; serial when
        ``dask.distributed`` is not installed. ``"tcp://HOST:PORT"``: connect to a
        running scheduler (``SchedulerUnreachableError`` after ``timeout``
        seconds); a path ending in ``.json``: a Dask scheduler file;
        ``"local"``: a local cluster (error without Dask); ``"gpu"``: a local
        GPU worker pool (:func:`gpu_cluster`, one worker per visible GPU);
        ``"serial"``: in this process, one task after the other.
    n_workers : int, optional
        Worker processes of the local cluster.
    params : list of str, optional
        The parameter names ``fn`` accepts (default: ``fn.params`` if the
        function has that attribute). A config with any other key is an
        *unknown parameter*: :class:`SweepConfigError` before anything runs.
        Without ``params`` nor ``fn.params`` names are not checked.
    defaults : dict, optional
        Values of the parameters not swept, merged under every config
        (``{**defaults, **config}``); the merged config is what is hashed,
        stored and passed to ``fn``.
    retry_errors : bool
        On a rerun, run again the tasks whose last record is an error
        (default). The new record is appended; :func:`load_results` returns
        the latest one per task. ``False``: keep the error, skip the task.
    blas_threads : int or None
        Limit BLAS/OpenMP to this many threads inside each task (threadpoolctl),
        in every mode, so serial and parallel runs compute the same bits.
        ``None``: leave the thread pools alone.
    progress : bool, optional
        tqdm bar over tasks; default: when stderr is a terminal and
        ``BIONP_PROGRESS`` is not ``0``.
    timeout : float
        Seconds to wait for a remote scheduler to answer.
    callback : callable, optional
        Called in the driver with each new record after it is stored.
    verbose : bool
        Print what runs where (cluster, dashboard) on stderr.

    Returns
    -------
    list of dict
        One record per ``(config, repeat)``, in config order then repeat order,
        including those found in the store.

    Raises
    ------
    SweepConfigError
        Empty or bad configs, unknown parameters, ``repeats < 1``.
    SchedulerUnreachableError, DaskUnavailableError
        The requested cluster cannot be used.
    bionp.sweep.store.StoreError
        The store cannot be used (not a store, another format version, locked
        by another running sweep, or written with another ``rng``).

    Notes
    -----
    **Resume and failures.** A rerun of the same call skips every task with an
    ``"ok"`` record; an interrupted sweep (Ctrl-C, a crash, a lost job) loses
    at most the tasks that were running. Errors are retried on a rerun unless
    ``retry_errors=False``. If a worker process dies, Dask reschedules its
    tasks on the other workers (a task that kills three workers is recorded
    as an error, ``KilledWorker``); only the driver writes the store, and at
    most one record per task and run.

    **GPU worker pool.** One worker per GPU, each seeing only its own device::

        bionp.sweep.run(task, configs, scheduler="gpu")     # this machine's GPUs (gpu_cluster)
        # dask-cuda starts one worker per visible GPU with CUDA_VISIBLE_DEVICES set:
        from dask_cuda import LocalCUDACluster
        from dask.distributed import Client
        client = Client(LocalCUDACluster())
        # or by hand, on each GPU i of each machine:
        #   CUDA_VISIBLE_DEVICES=i dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1

        def task(config, seed):
            import bionp
            bionp.use("cupy")            # inside the task: the worker's own GPU
            ...
        bionp.sweep.run(task, configs, client=client, store="sweep.jsonl")

    Same seeds give the same numbers on NumPy and CuPy up to floating-point
    reduction order, so a sweep may mix CPU and GPU workers only where that
    difference is acceptable.

    Scripts that start a local cluster must guard their entry point with
    ``if __name__ == "__main__":`` (worker processes are spawned and import
    the main module).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SweepConfigError(f"repeats must be an int >= 1, got {repeats!r}")
    if not callable(fn):
        raise SweepConfigError(
            f"fn must be callable fn(config, seed) -> dict, got {type(fn).__name__}")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int)
                                  or n_workers < 1):
        raise SweepConfigError(
            f"n_workers must be an int >= 1 (or None: one per core), got {n_workers!r}")
    if client is not None and scheduler is not None:
        raise SweepError("pass either client= or scheduler=, not both")
    if scheduler is not None and not isinstance(scheduler, str):
        raise SweepError(f"scheduler must be a string ('serial', 'local', 'tcp://HOST:PORT' or a "
                         f"scheduler-file path), got {type(scheduler).__name__}")
    configs = check_configs(configs)
    params = _resolve_params(fn, params)
    if defaults is not None:
        defaults = normalize_config(defaults, where="defaults")
        check_params([defaults], params)
        configs = check_configs([{**defaults, **c} for c in configs])
    check_params(configs, params)

    tasks = []  # (index, config, hash, repeat)
    hashes = [config_hash(c) for c in configs]
    for i, (c, h) in enumerate(zip(configs, hashes)):
        for r in range(repeats):
            tasks.append((i, c, h, r))

    root = None if rng is None else rng_state(rng)
    writer = None
    existing: list[dict] = []
    if store is not None:
        header, _ = read_store(store, warn=False)
        if header is not None:
            stored_root = header.get("rng")
            if root is None:
                root = stored_root
            elif stored_root is not None and stored_root != root:
                from bionp.sweep.store import StoreError

                raise StoreError(
                    f"{os.fspath(store)} was written with another root seed (entropy "
                    f"{stored_root}) than this run's ({root}): the tasks' seeds would differ. "
                    "Use the same root seed (`seed = ...` in a sweep file, rng= in "
                    "bionp.sweep.run; rng=None reuses the store's), or a new store path "
                    "(`store = ...` in a sweep file, store= in bionp.sweep.run).")
    if root is None:
        root = rng_state(None)
    if store is not None:
        writer = ResultStore(store, new_header(root))
        existing = writer.records
    try:
        return _drive(fn, tasks, root, writer, existing, client=client, scheduler=scheduler,
                      n_workers=n_workers, retry_errors=retry_errors, blas_threads=blas_threads,
                      progress=progress, timeout=timeout, callback=callback, verbose=verbose)
    finally:
        if writer is not None:
            writer.close()


def _drive(fn, tasks, root, writer, existing, *, client, scheduler, n_workers, retry_errors,
           blas_threads, progress, timeout, callback, verbose):
    done: dict[tuple, dict] = {}
    for rec in latest_records(existing):
        if rec.get("status") == "ok" or not retry_errors:
            done[(rec["config_hash"], rec["repeat"])] = rec
    pending = [t for t in tasks if (t[2], t[3]) not in done]
    seeds = {(h, r): task_seed(root, h, r) for _, _, h, r in pending}

    def record(task, result):
        _, config, h, r = task
        rec = {"config": config, "config_hash": h, "repeat": r, "seed": seeds[(h, r)],
               "status": result["status"], "metrics": result["metrics"], "error": result["error"],
               "traceback": result["traceback"], "seconds": result["seconds"],
               "cpu_seconds": result.get("cpu_seconds"),
               "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "host": result["host"], "pid": result["pid"], "versions": result["versions"]}
        if writer is not None:
            writer.append(rec)
        done[(h, r)] = rec
        return rec

    n_total = len(tasks)
    if pending:
        skipped = n_total - len(pending)
        _say(verbose, f"{len(pending)} of {n_total} tasks to run"
             + (f" ({skipped} already in {writer.path})" if skipped else ""))
        bar = _progress_bar(progress, n_total, n_total - len(pending))
        try:
            mode, own_client, own_cluster = _choose_backend(client, scheduler, n_workers, timeout,
                                                            verbose)
            try:
                if mode == "serial":
                    _run_serial(fn, pending, seeds, blas_threads, record, bar, callback)
                else:
                    _run_dask(own_client or client, fn, pending, seeds, blas_threads, record, bar,
                              callback, own=own_client is not None)
            except KeyboardInterrupt:
                # Ctrl-C: the finished tasks are stored; shut Dask down without its log of
                # cancelled tasks and killed workers (the caller says what happened, once)
                with _quiet_dask():
                    _close(own_client, own_cluster)
                raise
            except BaseException:
                _close(own_client, own_cluster)
                raise
            _close(own_client, own_cluster)
        finally:
            if bar is not None:
                bar.close()
    n_err = sum(done[(t[2], t[3])].get("status") != "ok" for t in tasks)
    if n_err:
        _say(verbose, f"{n_err} of {n_total} tasks failed (status 'error'; see their 'traceback')")
    return [done[(t[2], t[3])] for t in tasks]


def _close(own_client, own_cluster) -> None:
    """Close the client and the cluster this sweep opened (if any)."""
    if own_client is not None:
        own_client.close()
    if own_cluster is not None:
        own_cluster.close()


def _choose_backend(client, scheduler, n_workers, timeout, verbose):
    """``(mode, client we opened or None, cluster we started or None)``."""
    if client is not None:
        _check_workers(client, verbose)
        _say(verbose, f"running on the given Dask client (dashboard: {_dashboard(client)})")
        return "dask", None, None
    if scheduler == "serial":
        return "serial", None, None
    if scheduler == "gpu":
        cluster = gpu_cluster()
        c = _import_distributed().Client(cluster)
        _own_workers_ignore_ctrl_c(c)
        _say(verbose, f"GPU worker pool: one worker per GPU ({', '.join(cluster.workers)}); "
                      f"dashboard: {_dashboard(c)}")
        return "dask", c, cluster
    if scheduler in (None, "local"):
        dd = _import_distributed()
        if dd is None:
            if scheduler == "local":
                raise DaskUnavailableError("scheduler='local' needs dask.distributed: pip install "
                                           "'bionp[distributed]' (or use scheduler='serial')")
            _say(verbose, "dask.distributed is not installed: running serially in this process")
            return "serial", None, None
        cluster = local_cluster(n_workers)
        try:
            c = dd.Client(cluster)
            _own_workers_ignore_ctrl_c(c)
        except BaseException:
            cluster.close()
            raise
        _say(verbose, f"local Dask cluster with {len(cluster.workers)} single-threaded worker "
                      f"processes; dashboard: {_dashboard(c)}")
        return "dask", c, cluster
    c = _connect(scheduler, timeout)
    try:
        _check_workers(c, verbose)
    except BaseException:
        c.close()
        raise
    n = len(c.scheduler_info().get("workers", {}))
    _say(verbose, f"connected to {scheduler} ({n} workers); "
                  f"dashboard: {_dashboard(c)}")
    return "dask", c, None


def _worker_check() -> dict:
    """Run on every worker before a sweep: proves it imports bionp; its versions."""
    return _versions()


def _check_workers(client, verbose: bool) -> None:
    """Every worker must import bionp (else a task would crash it); warn on other versions."""
    import warnings

    try:
        answers = client.run(_worker_check, on_error="return")
    except Exception as exc:  # pragma: no cover - scheduler gone
        raise SweepError(f"could not reach the Dask workers ({type(exc).__name__}: {exc})") from None
    if not answers:
        _say(verbose, "the cluster has no workers yet: tasks start when workers join")
        return
    broken = {w: a for w, a in answers.items() if isinstance(a, BaseException)}
    if broken:
        w, exc = next(iter(broken.items()))
        raise SweepError(
            f"{len(broken)} of {len(answers)} Dask workers cannot run bionp tasks; {w}: {exc}. "
            "Install bionp (the same version as here, with its dependencies) in every worker's "
            "environment.")
    mine = _versions()
    other = {w: a for w, a in answers.items() if a != mine}
    if other:
        w, a = next(iter(other.items()))
        warnings.warn(f"{len(other)} Dask worker(s) run other versions than this process "
                      f"({w}: {a}; here: {mine}); results may differ from a local run",
                      RuntimeWarning, stacklevel=4)


def _dashboard(client) -> str:
    try:
        link = client.dashboard_link
    except Exception:
        link = None
    return link or "not available (install bokeh for the Dask dashboard)"


def _run_serial(fn, pending, seeds, blas_threads, record, bar, callback):
    for task in pending:
        _, config, h, r = task
        rec = record(task, execute_task(fn, config, seeds[(h, r)], blas_threads))
        if bar is not None:
            bar.update(1)
        if callback is not None:
            callback(rec)


def _pickle_function(fn) -> bytes:
    """``fn`` pickled with cloudpickle: by value when it comes from ``__main__`` or a file
    registered with ``cloudpickle.register_pickle_by_value`` (plain pickle, which Dask tries
    first, would send such functions by reference and workers could not import them)."""
    import cloudpickle

    try:
        return cloudpickle.dumps(fn)
    except Exception as exc:
        raise SweepError(
            f"the task function cannot be pickled to send it to the workers ({type(exc).__name__}: "
            f"{exc}). Define it at module level, without references to open files, locks or "
            "clients, or run with scheduler='serial'.") from None


def execute_pickled(fn_bytes: bytes, config: dict, seed: int, blas_threads: int | None = 1) -> dict:
    """:func:`execute_task` with the function sent as cloudpickle bytes (unpickled once per process)."""
    import hashlib

    def load():
        import cloudpickle

        return cloudpickle.loads(fn_bytes)

    try:
        fn = cached(("bionp.sweep.fn", hashlib.sha256(fn_bytes).hexdigest()), load)
    except Exception as exc:
        out = execute_task(lambda c, s: (_ for _ in ()).throw(exc), config, seed, None)
        out["error"] = f"could not unpickle the task function on the worker: {out['error']}"
        return out
    return execute_task(fn, config, seed, blas_threads)








def _run_dask(client, fn, pending, seeds, blas_threads, record, bar, callback, own=False):
    from dask.distributed import as_completed

    token = os.urandom(4).hex()
    # Sent with every task rather than scattered once: scattered data would be lost with the
    # workers holding it, while a task's own arguments survive any worker's death. Keep the
    # function small: load data inside the task (see cached()), not in a closure.
    fn_bytes = _pickle_function(fn)
    futures = {}
    for task in pending:
        _, config, h, r = task
        fut = client.submit(execute_pickled, fn_bytes, config, seeds[(h, r)], blas_threads,
                            key=f"bionp-sweep-{h}-{r}-{token}", pure=False, retries=0)
        futures[fut.key] = (fut, task)
    written = set()
    try:
        for fut in as_completed([f for f, _ in futures.values()]):
            _, task = futures[fut.key]
            if fut.key in written:  # a lost-and-recomputed result reported twice: one record only
                continue
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker, CancelledError, ...: the task did not finish
                result = {"status": "error", "metrics": {}, "error": f"{type(exc).__name__}: {exc}",
                          "traceback": "".join(traceback.format_exception(exc)), "seconds": None,
                          "cpu_seconds": None,
                          "host": None, "pid": None, "versions": None}
            written.add(fut.key)
            fut.release()
            rec = record(task, result)
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(rec)
    except KeyboardInterrupt:
        # the cluster is closed next (ours) or keeps its tasks (a given client: cancel them
        # quietly, so that a Ctrl-C does not leave them running on someone's cluster)
        with _quiet_dask():
            try:
                if own:  # our own workers: no log of the tasks they drop as the cluster closes
                    client.run(_silence_worker)
                leftover = [f for k, (f, _) in futures.items() if k not in written]
                if leftover:
                    client.cancel(leftover)
            except Exception:  # pragma: no cover - the client is already going down
                pass
        futures.clear()
        raise
    finally:
        leftover = [f for k, (f, _) in futures.items() if k not in written]
        if leftover:
            client.cancel(leftover)
