"""Parallel speed-up and per-task overhead of bionp.sweep on a local Dask cluster (JSON).

* Speed-up: 8 equal CPU-bound tasks (a loop of float64 matrix products, BLAS
  limited to one thread, calibrated to about ``--task-seconds`` each) on a
  local cluster of 2 worker processes vs 1 worker process. Cluster start-up is
  timed separately, not included.
* Overhead: ``--tiny`` tasks that return at once, on the 1-worker cluster vs
  serially in this process; (dask - serial) / tasks is the per-task cost of
  the Dask path (submission, scheduling, result transfer, store write).

Other processes on the machine slow the parallel run down: the load average
before the run is reported.

Usage: python benchmarks/sweep.py [--task-seconds 1.5] [--tasks 8] [--tiny 40]
"""

from __future__ import annotations

import os
import sys

# benchmarks/random.py would shadow the standard library's ``random`` (imported by tempfile/dask)
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # this checkout's bionp, not another install

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time

import numpy as np  # noqa: E402

import bionp.sweep as sw  # noqa: E402

N = 192


def matmul_loop(config, seed):
    a = np.full((N, N), 1.0 / N) + np.eye(N) * 1e-3
    b = a.copy()
    for _ in range(config["iters"]):
        b = a @ b
    return {"checksum": float(b[0, 0])}


def tiny(config, seed):
    return {"i": config["i"]}


def _one_task(iters):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        matmul_loop({"iters": iters}, 0)


def plain_process_speedup(iters: int) -> float:
    """Control without Dask: 2 tasks in 2 concurrent processes vs one after the other in 1."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        pool.apply(_one_task, (1,))  # warm-up (imports)
        t0 = time.perf_counter()
        pool.map(_one_task, [iters, iters])
        one = time.perf_counter() - t0
    with ctx.Pool(2) as pool:
        pool.map(_one_task, [1, 1])
        t0 = time.perf_counter()
        pool.map(_one_task, [iters, iters], chunksize=1)
        two = time.perf_counter() - t0
    return one / two


def calibrate(seconds: float) -> int:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        t0 = time.perf_counter()
        matmul_loop({"iters": 200}, 0)
        per_iter = (time.perf_counter() - t0) / 200
    return max(1, int(seconds / per_iter))


def timed_sweep(fn, configs, client, store):
    t0 = time.perf_counter()
    recs = sw.run(fn, configs, client=client, store=store, progress=False, verbose=False)
    wall = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in recs), recs
    return wall, recs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task-seconds", type=float, default=1.5,
                    help="seconds of work per task (calibrated matmuls)")
    ap.add_argument("--tasks", type=int, default=8, help="tasks in the timed sweep")
    ap.add_argument("--tiny", type=int, default=40,
                    help="tasks that return at once, for the per-task overhead")
    args = ap.parse_args()
    from dask.distributed import Client

    load_before = os.getloadavg()
    iters = calibrate(args.task_seconds)
    configs = [{"iters": iters, "k": k} for k in range(args.tasks)]  # equal work, distinct configs
    out = {"cpu_count": os.cpu_count(), "load_average_before": [round(v, 2) for v in load_before],
           "tasks": args.tasks, "matmul_size": N, "iters_per_task": iters}
    with tempfile.TemporaryDirectory() as tmp:
        walls, startup = {}, {}
        for n in (1, 2):
            t0 = time.perf_counter()
            cluster = sw.local_cluster(n, dashboard_address=None)
            client = Client(cluster)
            client.wait_for_workers(n)
            startup[n] = time.perf_counter() - t0
            walls[n], recs = timed_sweep(matmul_loop, configs, client, os.path.join(tmp, f"w{n}.jsonl"))
            out[f"task_seconds_mean_{n}_workers"] = float(np.mean([r["seconds"] for r in recs]))
            # CPU time / wall time of a task: 1.0 when its worker had a core to itself
            out[f"task_cpu_seconds_mean_{n}_workers"] = float(np.mean([r["cpu_seconds"] for r in recs]))
            out[f"task_cpu_share_{n}_workers"] = float(np.mean([r["cpu_seconds"] / r["seconds"] for r in recs]))
            if n == 1:
                tiny_configs = [{"i": i} for i in range(args.tiny)]
                dask_tiny, _ = timed_sweep(tiny, tiny_configs, client, os.path.join(tmp, "tiny_dask.jsonl"))
                t0 = time.perf_counter()
                sw.run(tiny, tiny_configs, scheduler="serial", store=os.path.join(tmp, "tiny_serial.jsonl"),
                       progress=False, verbose=False)
                serial_tiny = time.perf_counter() - t0
            client.close()
            cluster.close()
    out.update({
        "wall_seconds_1_worker": walls[1],
        "wall_seconds_2_workers": walls[2],
        "speedup_2_vs_1": walls[1] / walls[2],
        "speedup_target": 1.7,
        # the same 2 tasks in 2 plain processes vs 1 (no Dask): what this machine allows now
        "speedup_plain_processes_control": plain_process_speedup(iters),
        # what the speed-up would be had each worker had a core to itself (CPU time per task is
        # the same in both runs; other processes on the machine take the difference)
        "speedup_estimate_if_cores_free": (walls[1] / walls[2]) * (
            out["task_cpu_share_2_workers"] and out["task_cpu_share_1_workers"] / out["task_cpu_share_2_workers"]),
        "cluster_startup_seconds": startup,
        "tiny_tasks": args.tiny,
        "tiny_wall_seconds_dask_1_worker": dask_tiny,
        "tiny_wall_seconds_serial": serial_tiny,
        "overhead_seconds_per_task": (dask_tiny - serial_tiny) / args.tiny,
        "overhead_target_seconds": 0.2,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    })
    shares = (out["task_cpu_share_1_workers"], out["task_cpu_share_2_workers"])
    if min(shares) < 0.9:
        out["note"] = ("the machine was busy: a worker process got only "
                       f"{shares[0]:.0%} (1 worker) and {shares[1]:.0%} (2 workers) of a core, so "
                       "both timings reflect the other processes as much as the sweep")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
