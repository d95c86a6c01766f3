"""Where a sweep runs: local and GPU Dask clusters, connecting to a scheduler, and the
check that every worker can run bionp tasks.  Dask is imported only inside these functions."""

from __future__ import annotations

import os
import sys
from typing import Mapping, Sequence

from bionp.sweep._interrupt import _own_workers_ignore_ctrl_c
from bionp.sweep.errors import DaskUnavailableError, SchedulerUnreachableError, SweepError
from bionp.sweep.task import BLAS_ENV, _versions

__all__ = ["gpu_cluster", "local_cluster"]


def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"bionp.sweep: {msg}", file=sys.stderr, flush=True)



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

    Parameters
    ----------
    n_workers : int, optional
        Worker processes, >= 1; the number of cores when ``None``.
    env : Mapping of str to str, optional
        More environment variables for the workers.
    dashboard_address : str or None, default ":0"
        The dashboard's address (``":0"``: any free port; ``None``: no dashboard).
    **kwargs
        More arguments of ``LocalCluster``.
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
