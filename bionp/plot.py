"""Matplotlib figures saved as PNG: learning curves, bar charts with error bars.

matplotlib is imported when a function is called (never by ``import bionp``),
with the non-interactive Agg backend unless one was already chosen.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

__all__ = ["pyplot", "save_figure", "plot_curves", "plot_bars", "plot_robustness", "smooth"]


def pyplot():
    """``matplotlib.pyplot``, with the Agg backend when no display is configured."""
    import matplotlib

    if "MPLBACKEND" not in os.environ and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> str:
    """Save ``fig`` as PNG (folders created), close it, return the path.

    Parameters
    ----------
    fig : matplotlib Figure
    path : str or path
    dpi : int, default 120
    """
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Moving average over ``window`` points (shorter at the start).

    Parameters
    ----------
    values : sequence of float
    window : int >= 1
    """
    v = np.asarray(values, dtype=np.float64)
    if window <= 1 or v.size == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(v.size):
        lo = max(0, i + 1 - window)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def plot_curves(runs: Mapping[str, Sequence[float]], path: str | os.PathLike | None = None, *,
                xlabel: str = "epoch", ylabel: str = "", title: str = "", logy: bool = False,
                smooth_window: int = 1, x_start: int = 1, errors: Mapping[str, Sequence[float]] | None = None,
                x: Sequence[float] | None = None):
    """One line per run (``{name: values}``); optional ± error bands; saved if ``path``.

    The x values are ``x_start, x_start + 1, …`` unless ``x`` gives them (shared by the runs);
    integer x values (epochs) get integer ticks only.

    Parameters
    ----------
    runs : dict of str -> sequence of float
    path : str, path or None
        Where to save the PNG; ``None`` keeps the figure open.
    xlabel, ylabel, title : str
    logy : bool, default False
    smooth_window : int, default 1
        Moving-average window (:func:`smooth`).
    x_start : int, default 1
        The x value of the first point (epochs count from 1).
    errors : dict of str -> sequence of float or None
        Half-width of each run's band.
    x : sequence of float or None
        Explicit x values instead of ``x_start``, ``x_start + 1``, ...
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    if x is None or all(float(v).is_integer() for v in x):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for name, values in runs.items():
        v = smooth(values, smooth_window)
        xs = np.arange(x_start, x_start + v.size) if x is None else np.asarray(x)[:v.size]
        ax.plot(xs, v, label=name, marker="o" if v.size <= 30 else None)
        if errors and name in errors:
            e = np.asarray(errors[name], dtype=np.float64)
            ax.fill_between(xs, v - e, v + e, alpha=0.2)
    return _finish(fig, ax, path, xlabel, ylabel, title, logy, bool(runs))


def _finish(fig, ax, path, xlabel, ylabel, title, logy, legend):
    """Labels, grid, legend; save if ``path``; return ``fig``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_bars(values: Mapping[str, float], path: str | os.PathLike | None = None, *,
              errors: Mapping[str, float] | None = None, ylabel: str = "", title: str = "",
              logy: bool = False):
    """Bar chart of ``{name: value}`` with optional error bars; saved if ``path``.

    Parameters
    ----------
    values : dict of str -> float
    path : str, path or None
        Where to save the PNG; ``None`` keeps the figure open.
    errors : dict of str -> float or None
        Error bar per name.
    ylabel, title : str
    logy : bool, default False
    """
    plt = pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(names)), 4))
    err = [errors.get(n, 0.0) for n in names] if errors else None
    ax.bar(range(len(names)), [values[n] for n in names], yerr=err, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_robustness(curves: Mapping[str, object], path: str | os.PathLike | None = None, *,
                    xlabel: str = "test-time weight noise σ", ylabel: str = "test accuracy (%)",
                    title: str = ""):
    """Accuracy versus test-time noise σ, mean ± std error bars, one line per model.

    ``curves`` maps a name to a :class:`bionp.robustness.RobustnessCurve` or to a dict
    with ``sigmas``, ``mean`` and ``std`` (its ``to_dict()``); saved if ``path``.

    Parameters
    ----------
    curves : dict of str -> RobustnessCurve
        From :func:`bionp.robustness.robustness_curve`.
    path : str, path or None
    xlabel, ylabel, title : str
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        d = c.to_dict() if hasattr(c, "to_dict") else c
        ax.errorbar(d["sigmas"], d["mean"], yerr=d["std"], label=name, marker="o", capsize=3)
    return _finish(fig, ax, path, xlabel, ylabel, title, False, bool(curves))
