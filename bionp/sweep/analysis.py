"""Sweep results as tables and figures: mean ± std over repeats, the best config, plots.

Records are those of :func:`load_results` (or returned by :func:`bionp.sweep.run`).
A metric is a key of ``record["metrics"]``; a per-epoch list (e.g.
``test_accuracy``) is reduced to its last value. ``by`` names config
parameters (or ``"repeat"``).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Iterable, Sequence

from bionp.sweep.store import latest_records, read_store

__all__ = ["load_results", "metric_value", "summarize", "best", "best_per_group",
           "plot_metric_vs_param", "plot_rule_comparison", "format_summary"]


def load_results(store: str | os.PathLike, *, status: str | None = None,
                 history: bool = False) -> list[dict]:
    """The records of a result store.

    Parameters
    ----------
    store : path
    status : {"ok", "error"}, optional
        Keep only records with this status.
    history : bool
        ``False`` (default): one record per ``(config, repeat)``, the latest
        ``"ok"`` one if there is one (an error retried successfully is
        replaced). ``True``: every record in file order.

    A truncated last line (a crash in the middle of a write) is ignored with a
    :class:`~bionp.sweep.store.TruncatedRecordWarning`.
    """
    path = os.fspath(store)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no sweep result store at {path!r}")
    _, records = read_store(path)
    if not history:
        records = latest_records(records)
    if status is not None:
        if status not in ("ok", "error"):
            raise ValueError(f"status must be 'ok', 'error' or None, got {status!r}")
        records = [r for r in records if r.get("status") == status]
    return records


def metric_value(record: dict, metric: str) -> float:
    """``record["metrics"][metric]`` as a float (last element of a list).

    Parameters
    ----------
    record : dict
    metric : str
    """
    metrics = record.get("metrics") or {}
    if metric not in metrics:
        raise KeyError(f"metric {metric!r} not in this record; it has {sorted(metrics)}")
    v = metrics[metric]
    if isinstance(v, (list, tuple)):
        if not v:
            return math.nan
        v = v[-1]
    if v is None:
        return math.nan
    return float(v)


def _group_value(record: dict, name: str):
    if name == "repeat":
        return record["repeat"]
    config = record["config"]
    if name not in config:
        raise KeyError(f"parameter {name!r} is not in the config {config}; "
                       f"by= takes config parameter names or 'repeat'")
    v = config[name]
    return tuple(v) if isinstance(v, list) else v


def _ok(records: Iterable[dict], metric: str) -> list[dict]:
    records = list(records)
    ok = [r for r in records if r.get("status") == "ok"]
    if len(ok) < len(records):
        warnings.warn(f"{len(records) - len(ok)} failed record(s) left out of the summary",
                      UserWarning, stacklevel=3)
    if not ok:
        raise ValueError("no successful records to summarise")
    known = set().union(*(r.get("metrics", {}).keys() for r in ok))
    if metric not in known:
        raise KeyError(f"metric {metric!r} is in no record; known metrics: {sorted(known)}")
    return ok


def summarize(records: Iterable[dict], metric: str,
              by: Sequence[str] | str | None = None) -> list[dict]:
    """Mean ± std of ``metric`` over repeats, one row per group.

    Parameters
    ----------
    records : list of dict
    metric : str
    by : list of str, optional
        Config parameters that define a group (default: every parameter, so one
        row per config and the statistics are over its repeats).

    Returns
    -------
    list of dict
        ``{<by values>..., "mean": m, "std": s, "n": n, "min": ..., "max": ...}``
        in the order groups first appear; ``std`` is the sample standard
        deviation (``ddof=1``; 0 for a single value). NaN values (diverged runs)
        are counted in ``n_nan`` and left out of the statistics.
    """
    ok = _ok(records, metric)
    if by is None:
        names: list[str] = []
        for r in ok:
            names += [k for k in r["config"] if k not in names]
        by = names
    elif isinstance(by, str):
        by = [by]
    groups: dict[tuple, list[float]] = {}
    for r in ok:
        key = tuple(_group_value(r, b) for b in by)
        try:
            v = metric_value(r, metric)
        except KeyError:
            continue
        groups.setdefault(key, []).append(v)
    rows = []
    for key, vals in groups.items():
        finite = [v for v in vals if not math.isnan(v)]
        n = len(finite)
        mean = sum(finite) / n if n else math.nan
        if n > 1:
            std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
        else:
            std = 0.0 if n else math.nan
        row = {b: (list(k) if isinstance(k, tuple) else k) for b, k in zip(by, key)}
        row.update(mean=mean, std=std, n=n, n_nan=len(vals) - n,
                   min=min(finite) if n else math.nan, max=max(finite) if n else math.nan)
        rows.append(row)
    return rows


def best(records: Iterable[dict], metric: str, mode: str = "max",
         by: Sequence[str] | str | None = None) -> dict:
    """The row of :func:`summarize` with the highest (``mode="max"``) or lowest mean.

    Parameters
    ----------
    records : iterable of dict
        Records of a sweep (:func:`run`, :func:`load_results`).
    metric : str
        A key of the records' ``metrics`` (a list counts by its last element).
    mode : {"max", "min"}, default "max"
    by : str, list of str or None
        Configuration keys to group by (as for :func:`summarize`).
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    rows = [r for r in summarize(records, metric, by=by) if not math.isnan(r["mean"])]
    if not rows:
        raise ValueError(f"every value of {metric!r} is NaN")
    pick = max if mode == "max" else min
    return pick(rows, key=lambda r: r["mean"])


def format_summary(rows: Sequence[dict]) -> str:
    """Plain-text table of :func:`summarize` rows, ``mean ± std`` in one column.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`summarize`.
    """
    from bionp.experiment import format_table

    table = []
    for r in rows:
        row = {k: v for k, v in r.items() if k not in ("mean", "std", "n", "n_nan", "min", "max")}
        row["mean ± std"] = f"{r['mean']:.4g} ± {r['std']:.2g}"
        row["n"] = r["n"]
        table.append(row)
    return format_table(table)


def plot_metric_vs_param(records: Iterable[dict], metric: str, param: str,
                         path: str | os.PathLike | None = None, *, hue: str | None = None,
                         logx: bool | None = None, ylabel: str | None = None, title: str = ""):
    """``metric`` (mean ± std over repeats) against a numeric ``param``; a line per ``hue`` value.

    Saved as PNG if ``path``; returns the figure. ``logx`` defaults to True when
    the parameter's values span more than a factor of 20 and are positive.

    Parameters
    ----------
    records : iterable of dict
        Records of a sweep (:func:`run`, :func:`load_results`).
    metric : str
        A key of the records' ``metrics`` (a list counts by its last element).
    param : str
        A numeric configuration key, on the x axis.
    path : str, path or None
    hue : str or None
        A configuration key: one line per value.
    logx : bool or None
        ``None``: a log axis when the values are positive and span more than a factor of 20.
    ylabel, title : str or None
    """
    from bionp.plot import pyplot, save_figure

    rows = summarize(records, metric, by=[param] + ([hue] if hue else []))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    lines: dict[Any, list[dict]] = {}
    for r in rows:
        lines.setdefault(r[hue] if hue else None, []).append(r)
    xs_all = []
    for name, rs in lines.items():
        rs = sorted(rs, key=lambda r: r[param])
        x = [r[param] for r in rs]
        xs_all += x
        ax.errorbar(x, [r["mean"] for r in rs], yerr=[r["std"] for r in rs], marker="o",
                    capsize=3, label=None if name is None else f"{hue}={name}")
    if logx is None:
        pos = [v for v in xs_all if isinstance(v, (int, float)) and v > 0]
        logx = len(pos) == len(xs_all) and pos and max(pos) / min(pos) > 20
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel(ylabel or metric)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if hue:
        ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path)
    return fig


def best_per_group(records: Iterable[dict], metric: str, by: str = "rule",
                   mode: str = "max") -> dict:
    """The best config of each value of ``by``: ``{value: summarize-row}``.

    Each row holds the chosen config's parameters (e.g. ``lr``), ``mean``, ``std``
    and ``n`` over its repeats; the best is the highest mean (``mode="max"``) or the
    lowest (``"min"``), NaN means last.  What :func:`plot_rule_comparison` draws.

    Parameters
    ----------
    records : iterable of dict
        Records of a sweep (:func:`run`, :func:`load_results`).
    metric : str
        A key of the records' ``metrics`` (a list counts by its last element).
    by : str, default "rule"
        The configuration key whose values are the groups.
    mode : {"max", "min"}, default "max"
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    records = list(records)
    ok = _ok(records, metric)
    params = []
    for r in ok:
        params += [k for k in r["config"] if k != by and k not in params]
    rows = summarize(ok, metric, by=[by] + params)
    sign = 1.0 if mode == "max" else -1.0
    out: dict[Any, dict] = {}
    for r in rows:
        key = r[by]
        key = tuple(key) if isinstance(key, list) else key
        old = out.get(key)
        if old is None or (not math.isnan(r["mean"])
                           and (math.isnan(old["mean"]) or sign * r["mean"] > sign * old["mean"])):
            out[key] = r
    return out


def plot_rule_comparison(records: Iterable[dict], metric: str,
                         path: str | os.PathLike | None = None, *, by: str = "rule",
                         ylabel: str | None = None, title: str = "",
                         logy: bool = False, mode: str = "max"):
    """Bars of ``metric`` (mean over repeats, error bars = std) per value of ``by``.

    Records with several configs per ``by`` value (e.g. several learning
    rates) are reduced to the best config of each (highest mean, ``mode="max"``;
    :func:`best_per_group`).  Each bar's label names the config it shows (e.g.
    ``backprop (lr=0.1)``) and the title says the bars are the best per ``by``
    value; the figure's ``best_configs`` attribute holds the chosen rows
    (``{value: row}`` with the parameters, ``mean``, ``std``, ``n``).

    Parameters
    ----------
    records : iterable of dict
        Records of a sweep (:func:`run`, :func:`load_results`).
    metric : str
        A key of the records' ``metrics`` (a list counts by its last element).
    path : str, path or None
    by : str, default "rule"
    ylabel, title : str or None
    logy : bool, default False
    mode : {"max", "min"}, default "max"
        Which configuration of each group is its best.
    """
    from bionp.plot import plot_bars

    chosen = best_per_group(records, metric, by=by, mode=mode)
    params = [k for r in chosen.values() for k in r
              if k not in (by, "mean", "std", "n", "n_nan", "min", "max")]
    params = list(dict.fromkeys(params))
    # the parameters the choice was made over: those that vary within some value of ``by``
    records = _ok(list(records), metric)
    def key_of(r):
        v = _group_value(r, by)
        return tuple(v) if isinstance(v, list) else v

    tuned = [p for p in params if any(
        len({repr(r["config"].get(p)) for r in records if key_of(r) == key}) > 1
        for key in chosen)]

    def label(key, row):
        extra = ", ".join(f"{p}={row[p]:g}" if isinstance(row[p], float) else f"{p}={row[p]}"
                          for p in tuned)
        return f"{key} ({extra})" if extra else str(key)

    values = {label(k, r): r["mean"] for k, r in chosen.items()}
    errors = {label(k, r): r["std"] for k, r in chosen.items()}
    if not title and tuned:
        which = "highest" if mode == "max" else "lowest"
        title = f"{metric}: best {', '.join(tuned)} per {by} ({which} mean)"
    fig = plot_bars(values, path, errors=errors, ylabel=ylabel or metric, title=title, logy=logy)
    fig.best_configs = chosen
    return fig
