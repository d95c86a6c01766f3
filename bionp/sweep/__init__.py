"""Parameter sweeps: grids of configs × repeats, run serially or on Dask, resumable.

::

    import bionp.sweep as sweep

    def train(config, seed):                      # one task: returns JSON-able metrics
        net = bionp.nn.MLP([784, 256, 10], rng=seed)
        ...
        return {"test_accuracy": history.test_accuracy}

    if __name__ == "__main__":
        configs = sweep.grid({"rule": ["backprop", "feedback_alignment"], "lr": [0.1, 0.01]})
        sweep.run(train, configs, repeats=3, store="results/sweep.jsonl")   # local Dask cluster
        rows = sweep.summarize(sweep.load_results("results/sweep.jsonl"), "test_accuracy",
                               by=["rule", "lr"])

* :func:`grid` — every combination of parameter lists; :func:`run` — the sweep
  (``scheduler=None``: a local cluster of one single-threaded worker process
  per core; ``"tcp://HOST:PORT"``: an existing Dask cluster; ``"serial"``, or
  no Dask installed: in this process, same results).
* The result store (:mod:`bionp.sweep.store`) is an append-only JSON-lines
  file, one record per finished task; a rerun resumes where it stopped.
* :func:`summarize`, :func:`best`, :func:`plot_metric_vs_param`,
  :func:`plot_rule_comparison` — tables and figures.
* ``python -m bionp sweep FILE.toml`` runs a sweep file (:mod:`bionp.sweep.sweepfile`).

Importing this package never imports Dask.
"""

from bionp.sweep.analysis import (
    best,
    best_per_group,
    format_summary,
    load_results,
    metric_value,
    plot_metric_vs_param,
    plot_rule_comparison,
    summarize,
)
from bionp.sweep.configs import SweepConfigError, canonical_json, config_hash, grid, task_seed
from bionp.sweep.clusters import gpu_cluster, local_cluster
from bionp.sweep.errors import DaskUnavailableError, SchedulerUnreachableError, SweepError
from bionp.sweep.runner import run
from bionp.sweep.task import BLAS_ENV, cached, execute_task
from bionp.sweep.store import (
    IncompatibleStoreError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    TruncatedRecordWarning,
    read_store,
)
from bionp.sweep.sweepfile import load_sweep_file

__all__ = [
    "BLAS_ENV", "DaskUnavailableError", "IncompatibleStoreError", "SchedulerUnreachableError",
    "StoreCorruptError", "StoreError", "StoreLockedError", "SweepConfigError", "SweepError",
    "TruncatedRecordWarning", "best", "best_per_group", "cached", "canonical_json", "config_hash", "execute_task",
    "format_summary", "gpu_cluster", "grid", "load_results", "load_sweep_file", "local_cluster", "metric_value",
    "plot_metric_vs_param", "plot_rule_comparison", "read_store", "run", "summarize", "task_seed",
]
