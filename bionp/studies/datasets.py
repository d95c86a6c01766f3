r"""The data of a study: a named data set or given arrays, a class-balanced subset, preprocessing.

Data are used as given (:func:`bionp.data.load` scales pixels to [0, 1]);
``preprocess="standardize"`` standardises every feature with training-set
statistics, ``preprocess="standardize_global"`` subtracts one mean and divides
by one standard deviation over all training pixels (the original dendritic
implementation's preprocessing, :math:`x \leftarrow (x - \bar x)/s`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["load_dataset"]

_PREPROCESS = (None, "none", "standardize", "standardize_global")


def load_dataset(dataset, *, subset: int | None = None, data_root=None, seed: int = 0,
                 preprocess: str | None = None):
    """``(x_train, y_train, x_test, y_test)`` on the active backend.

    Parameters
    ----------
    dataset : str or sequence of 4 arrays
        A name for :func:`bionp.data.load` (``"fashion-mnist"``,
        ``"fashion-mnist-small"``, ``"mnist"`` …) or ``(x_train, y_train, x_test,
        y_test)`` (``x`` of shape ``(N, features)``, ``y`` integer labels).
    subset : int, optional
        A class-balanced subset of this many training samples (seeded by ``seed``).
    preprocess : {None, "standardize", "standardize_global"}
        Per-feature standardisation, or one mean and standard deviation over all
        training values; statistics from the training split only.
    """
    from bionp import data

    if preprocess not in _PREPROCESS:
        raise ValueError(f"preprocess must be None, 'standardize' or 'standardize_global', got "
                         f"{preprocess!r}")
    if isinstance(dataset, str):
        x_tr, y_tr = data.load(dataset, split="train", root=data_root)
        x_te, y_te = data.load(dataset, split="test", root=data_root)
    elif isinstance(dataset, (tuple, list)) and len(dataset) == 4:
        x_tr, y_tr, x_te, y_te = dataset
    else:
        raise TypeError(f"dataset must be a data set name (e.g. 'fashion-mnist') or a tuple "
                        f"(x_train, y_train, x_test, y_test), got {type(dataset).__name__}")
    for name, a in (("x_train", x_tr), ("x_test", x_te)):
        if getattr(a, "ndim", None) != 2:
            raise ValueError(f"{name} must be 2-D (samples, features), got shape "
                             f"{tuple(getattr(a, 'shape', ()))}")
    if subset is not None:
        if isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or subset < 1:
            raise ValueError(f"subset must be a positive int (training samples), got {subset!r}")
        if subset < x_tr.shape[0]:
            x_tr, y_tr = data.stratified_subset(x_tr, y_tr, int(subset), rng=seed)
    if preprocess == "standardize":
        x_tr, x_te, _ = data.standardize(x_tr, x_te)
    elif preprocess == "standardize_global":
        x_tr, x_te = _standardize_global(x_tr, x_te)
    return x_tr, y_tr, x_te, y_te


def _standardize_global(x_tr, x_te):
    """``(x - mean) / std`` with one mean and one standard deviation of all training values."""
    from bionp.backend import check_same_backend, to_scalar

    xp = check_same_backend(x_tr, x_te, names=("x_train", "x_test"))
    if x_tr.dtype.kind != "f":
        raise ValueError(f"standardize_global needs float data, got {x_tr.dtype}")
    mean = float(to_scalar(xp.mean(x_tr, dtype=xp.float64)))
    std = float(to_scalar(xp.std(x_tr, dtype=xp.float64)))
    if not std > 0:
        raise ValueError("the training data are constant: cannot standardise them")
    dt = x_tr.dtype.type
    return ((x_tr - dt(mean)) * dt(1.0 / std), (x_te - dt(mean)) * dt(1.0 / std))
