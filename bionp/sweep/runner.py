"""Run a task over configs × repeats: serially, on a local Dask cluster, or on a remote one.

Dask is imported only inside the functions that use it, so ``import bionp.sweep``
works (and the serial path runs) without the ``distributed`` extra.
"""

from __future__ import annotations

import numbers
import os
import time
import traceback
from typing import Any, Callable, Iterable, Mapping

from bionp.sweep.configs import (
    SweepConfigError,
    check_configs,
    check_params,
    config_hash,
    normalize_config,
    rng_state,
    task_seed,
)
from bionp.sweep._interrupt import _quiet_dask, _silence_worker
from bionp.progress import progress_enabled
from bionp.sweep.clusters import _choose_backend, _say
from bionp.sweep.errors import SweepError
from bionp.sweep.store import ResultStore, latest_records, new_header, read_store
from bionp.sweep.task import _pickle_function, execute_pickled, execute_task

# -- the driver ---------------------------------------------------------------------------------

def _progress_bar(progress, total: int, initial: int):
    if not progress_enabled(progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="sweep", unit="task")




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
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise SweepConfigError(f"repeats must be an int >= 1, got {repeats!r}")
    if not callable(fn):
        raise SweepConfigError(
            f"fn must be callable fn(config, seed) -> dict, got {type(fn).__name__}")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int)
                                  or n_workers < 1):
        raise SweepConfigError(
            f"n_workers must be an int >= 1 (or None: one per core), got {n_workers!r}")
    if blas_threads is not None and (isinstance(blas_threads, bool) or not isinstance(
            blas_threads, numbers.Integral) or blas_threads < 1):
        raise SweepConfigError(
            f"blas_threads must be an int >= 1 (or None: leave BLAS alone), got {blas_threads!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) \
            or not 0 < timeout < float("inf"):
        raise SweepConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
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


def _run_serial(fn, pending, seeds, blas_threads, record, bar, callback):
    for task in pending:
        _, config, h, r = task
        rec = record(task, execute_task(fn, config, seeds[(h, r)], blas_threads))
        if bar is not None:
            bar.update(1)
        if callback is not None:
            callback(rec)


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
