"""Weight grids: every hidden unit's weights drawn as an image tile.

Grey images (MNIST, Fashion-MNIST: ``image_shape=(28, 28)``) use the diverging
colour map ``"bwr"`` on the symmetric range ``[-m, m]`` with ``m = max|W|`` over
each unit's own weights (``scale="unit"``, the default: a few large units would
otherwise wash out the rest) or over all the units shown (``scale="global"``, which
keeps the units' relative sizes), so white is zero.  RGB images (CIFAR-10 rows stored channel
first: ``image_shape=(3, 32, 32)``) are mapped to ``0.5 + W / (2m)``, so a zero
weight is mid-grey.  Tiles beyond the last unit are left blank.
"""

from __future__ import annotations

import numpy as np

from bionp.backend import asnumpy

__all__ = ["draw_weights", "weight_grid"]


def _check_grid(W, rows, cols, image_shape):
    W = asnumpy(W)  # an explicit copy to the host for plotting
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (n_units, n_in), got shape {W.shape}")
    for name, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        rgb = False
    elif len(shape) == 3 and shape[0] == 3:
        rgb = True
    else:
        raise ValueError("image_shape must be (height, width) or (3, height, width), "
                         f"got {image_shape!r}")
    if int(np.prod(shape)) != W.shape[1]:
        raise ValueError(f"image_shape {shape} has {int(np.prod(shape))} pixels but W has "
                         f"{W.shape[1]} inputs per unit")
    return W, shape, rgb


def weight_grid(W, rows: int, cols: int, image_shape, scale: str = "unit") -> np.ndarray:
    """The grid image: ``(rows*h, cols*w)`` in [-1, 1] (grey) or ``(rows*h, cols*w, 3)`` in [0, 1].

    Blank tiles are 0 (grey) / 0.5 (RGB).  ``scale``: ``"unit"`` (each tile by its own
    max|W|, the default) or ``"global"`` (one max|W| for all tiles).

    Parameters
    ----------
    W : array (n_units, n_in)
    rows, cols : int
    image_shape : (h, w) or (h, w, 3)
    scale : {"unit", "global"}, default "unit"
    """
    if scale not in ("global", "unit"):
        raise ValueError(f"scale must be 'global' or 'unit', got {scale!r}")
    W, shape, rgb = _check_grid(W, rows, cols, image_shape)
    n = min(rows * cols, W.shape[0])
    shown = W[:n].astype(np.float64)
    if scale == "unit":
        m = np.max(np.abs(shown), axis=1, keepdims=True) if n else np.ones((0, 1))
        shown = shown / np.where(m > 0, m, 1.0)
    m = float(np.max(np.abs(shown))) if n else 0.0
    scale = 1.0 / m if m > 0 else 1.0
    h, w = shape[-2:]
    if rgb:
        grid = np.full((rows * h, cols * w, 3), 0.5)
    else:
        grid = np.zeros((rows * h, cols * w))
    for i in range(n):  # one tile per unit; plotting only, not a hot loop
        r, c = divmod(i, cols)
        tile = shown[i].reshape(shape) * scale
        if rgb:
            grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = 0.5 + 0.5 * np.moveaxis(tile, 0, -1)
        else:
            grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    return grid


def draw_weights(W, rows: int, cols: int, image_shape=(28, 28), path=None, ax=None, title=None,
                 scale: str = "unit"):
    """Draw the first ``rows * cols`` units of ``W`` (n_units, n_in) as a grid of images.

    Parameters
    ----------
    W : array (n_units, n_in)
        Weights (any backend; copied to the host).
    rows, cols : int
        Grid size; tiles beyond ``n_units`` are blank.
    image_shape : (h, w) or (3, h, w)
        Shape of one unit's weights: grey or channel-first RGB (CIFAR-10 order).
    path : str or path-like, optional
        Save the figure there as PNG.
    ax : matplotlib Axes, optional
        Draw into it (its figure is returned); otherwise a new figure is made.
    title : str, optional
    scale : {"unit", "global"}, default "unit"
        One colour scale per unit (legible when a few units have large weights), or one
        for all tiles (see :func:`weight_grid`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    grid = weight_grid(W, rows, cols, image_shape, scale=scale)
    if ax is None:
        # a bare Figure renders with Agg and needs no pyplot (no GUI, no global state)
        from matplotlib.figure import Figure  # noqa: PLC0415

        fig = Figure(figsize=(max(2.0, cols * 0.6), max(2.0, rows * 0.6)))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    if grid.ndim == 2:
        im = ax.imshow(grid, cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
        label = "weight / max|W|" + (" of the unit" if scale == "unit" else "")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if path is not None:
        fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    return fig
