r"""Analysis of dendritic (and dense) layers: parameter counts, eigenvalue spectra, weight plots.

Eigenvalues
-----------
:func:`calculate_eigenvalues` returns the eigenvalues of the Gram matrix of a
weight matrix :math:`W \in \mathbb R^{m\times n}`: :math:`W W^\top` if
:math:`m \le n`, else :math:`W^\top W` (the same non-zero eigenvalues; the
smaller matrix is used), computed with :func:`scipy.linalg.eigvalsh` in float64
and sorted in descending order.  They are the squared singular values
:math:`\sigma_i^2` of :math:`W` — real and non-negative for any ``W``, which
the eigenvalues of a rectangular matrix are not.  For a
:class:`~bionp.dendritic.DendriticLayer` the matrix is its dendritic stage as
a dense ``(n_neurons · n_dendrites, in_dim)`` matrix (zeros off the synapses,
:meth:`~bionp.dendritic.DendriticLayer.dense_weights`); ``which="soma"`` uses
the soma weights as the block-diagonal ``(n_neurons, n_neurons·n_dendrites)``
matrix.  ``kind="eig"`` gives the (complex) eigenvalues of a square ``W`` itself
(:func:`scipy.linalg.eigvals`).

matplotlib and scipy are imported inside the functions.
"""

from __future__ import annotations

import math
import os

import numpy as np

from bionp.backend import asnumpy, is_array

__all__ = [
    "count_parameters",
    "calculate_eigenvalues",
    "neuron_weight_map",
    "plot_dendritic_weights_single_image",
    "plot_dendritic_weights_full_model",
    "plot_eigenvalue_spectrum",
]


def count_parameters(model) -> int:
    """Learned values of a layer or a network (anything with ``layers``).

    A layer's count is its ``n_params`` if it has one (a dendritic layer counts
    its synapses, soma weights and biases — never a dense mask), else the
    total size of the arrays of its ``params()``.  Arrays (or a dict of arrays)
    are counted by size.

    Parameters
    ----------
    model : layer, network, array or dict of arrays
    """
    if is_array(model):
        return int(model.size)
    if isinstance(model, dict):
        return int(sum(count_parameters(v) for v in model.values() if v is not None))
    if hasattr(model, "layers"):
        return int(sum(count_parameters(layer) for layer in model.layers))
    if hasattr(model, "n_params"):
        return int(model.n_params)
    if hasattr(model, "params"):
        return count_parameters(model.params())
    raise TypeError(f"cannot count the parameters of {type(model).__name__}: expected an array, a "
                    "layer (with n_params or params()) or a network (with layers)")


def _soma_matrix(layer) -> np.ndarray:
    sw = asnumpy(layer.soma_w)
    n, m = sw.shape
    out = np.zeros((n, n * m), dtype=sw.dtype)
    for i in range(n):  # n_neurons blocks of a host array
        out[i, i * m:(i + 1) * m] = sw[i]
    return out


def calculate_eigenvalues(W, kind: str = "gram", which: str = "dendrites") -> np.ndarray:
    """Eigenvalues of the appropriate square matrix of ``W`` (see the module docstring).

    Parameters
    ----------
    W : 2-D array (any backend) or a layer
        A :class:`~bionp.dendritic.DendriticLayer` (its dense dendrite matrix, or
        ``which="soma"``) or any layer with a ``W`` attribute.
    kind : {"gram", "eig"}
        ``"gram"``: eigenvalues of :math:`W W^\\top` (or :math:`W^\\top W`), real,
        descending.  ``"eig"``: eigenvalues of a square ``W``, complex, sorted by
        descending modulus.

    Returns
    -------
    numpy.ndarray (host)
    """
    import scipy.linalg

    if kind not in ("gram", "eig"):
        raise ValueError(f"kind must be 'gram' or 'eig', got {kind!r}")
    if which not in ("dendrites", "soma"):
        raise ValueError(f"which must be 'dendrites' or 'soma', got {which!r}")
    if hasattr(W, "dense_weights"):
        M = _soma_matrix(W) if which == "soma" else asnumpy(W.dense_weights()).copy()
    elif hasattr(W, "W") and is_array(W.W):
        M = asnumpy(W.W)
    elif is_array(W) or isinstance(W, np.ndarray):
        M = asnumpy(W)
    else:
        raise TypeError(f"expected a 2-D weight array or a layer, got {type(W).__name__}")
    if M.ndim != 2 or M.size == 0:
        raise ValueError(f"expected a non-empty 2-D weight matrix, got shape {M.shape}")
    M = M.astype(np.float64)
    if not np.all(np.isfinite(M)):
        raise ValueError("the weight matrix contains NaN or Inf; eigenvalues are undefined")
    if kind == "eig":
        if M.shape[0] != M.shape[1]:
            raise ValueError(f"kind='eig' needs a square matrix, got shape {M.shape}; use "
                             "kind='gram' (eigenvalues of W W^T) for a rectangular one")
        ev = scipy.linalg.eigvals(M)
        return ev[np.argsort(-np.abs(ev), kind="stable")]
    gram = M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M
    ev = scipy.linalg.eigvalsh(gram)
    return np.clip(ev[::-1], 0.0, None)


def _image_shape(in_dim: int, image_shape):
    if image_shape is None:
        side = math.isqrt(in_dim)
        if side * side != in_dim:
            raise ValueError(f"in_dim={in_dim} is not a square image; pass image_shape=(h, w)")
        return (side, side)
    image_shape = tuple(int(s) for s in image_shape)
    if int(np.prod(image_shape)) != in_dim:
        raise ValueError(f"image_shape {image_shape} does not have in_dim={in_dim} pixels")
    return image_shape


def neuron_weight_map(layer, neuron: int, weighted_by_soma: bool = False) -> np.ndarray:
    """``(in_dim,)`` host array: the summed synaptic weights of one neuron's dendrites on
    their inputs (each dendrite's weights times its soma weight if ``weighted_by_soma``).

    Parameters
    ----------
    layer : DendriticLayer
        The layer.
    neuron : int
        Index of the neuron, in ``[0, layer.n_neurons)``.
    weighted_by_soma : bool, default False
        Scale each dendrite's weights by its soma weight.
    """
    if not 0 <= int(neuron) < layer.n_neurons:
        raise ValueError(f"neuron must be in [0, {layer.n_neurons}), got {neuron!r}")
    m = layer.n_dendrites
    rows = slice(int(neuron) * m, (int(neuron) + 1) * m)
    idx = asnumpy(layer.idx[rows]).reshape(-1)
    w = asnumpy(layer.w[rows]).astype(np.float64)
    if weighted_by_soma:
        w = w * asnumpy(layer.soma_w[int(neuron)]).astype(np.float64)[:, None]
    out = np.zeros(layer.in_dim)
    np.add.at(out, idx, w.reshape(-1))
    return out


def plot_dendritic_weights_single_image(layer, neuron: int = 0, image=None, path=None, *,
                                        image_shape=None, weighted_by_soma: bool = False,
                                        title: str | None = None):
    """One neuron's dendritic weights on the image grid (e.g. 28×28), next to ``image``
    and overlaid on it if given; saves a PNG when ``path`` is given.  Returns the figure
    (or the saved path).

    Parameters
    ----------
    layer : DendriticLayer
        The layer.
    neuron : int, default 0
        Index of the neuron, in ``[0, layer.n_neurons)``.
    image : array, optional
        An input of ``layer.in_dim`` pixels, shown beside and under the map.
    path : path-like, optional
        Save the figure there as PNG and return the path; return the figure when ``None``.
    image_shape : tuple of int, optional
        ``(h, w)`` with ``h * w == layer.in_dim``; square when ``None``.
    weighted_by_soma : bool, default False
        As for :func:`neuron_weight_map`.
    title : str, optional
        Title of the map panel.
    """
    from bionp.plot import pyplot, save_figure

    shape = _image_shape(layer.in_dim, image_shape)
    wmap = neuron_weight_map(layer, neuron, weighted_by_soma).reshape(shape)
    plt = pyplot()
    n_panels = 1 if image is None else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(3.4 * n_panels, 3.2), squeeze=False)
    lim = float(np.max(np.abs(wmap))) or 1.0
    ax = axes[0, 0]
    if image is not None:
        img = asnumpy(image).reshape(shape)
        axes[0, 0].imshow(img, cmap="gray")
        axes[0, 0].set_title("input")
        ax = axes[0, 1]
        ax.imshow(img, cmap="gray", alpha=0.5)
    alpha = 0.85 if image is not None else 1.0
    im = ax.imshow(wmap, cmap="coolwarm", vmin=-lim, vmax=lim, alpha=alpha)
    ax.set_title(title or f"neuron {int(neuron)}: dendritic weights")
    fig.colorbar(im, ax=ax, fraction=0.046)
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
    return save_figure(fig, path) if path is not None else fig


def plot_dendritic_weights_full_model(layer, path=None, *, image_shape=None,
                                      weighted_by_soma: bool = False, ncols: int | None = None):
    """Every neuron's dendritic weight map on the image grid, one panel per neuron.

    Parameters
    ----------
    layer : DendriticLayer
        The layer.
    path : path-like, optional
        Save the figure there as PNG and return the path; return the figure when ``None``.
    image_shape : tuple of int, optional
        ``(h, w)`` with ``h * w == layer.in_dim``; square when ``None``.
    weighted_by_soma : bool, default False
        As for :func:`neuron_weight_map`.
    ncols : int, optional
        Panels per row; ``min(n_neurons, 5)`` when ``None``.
    """
    from bionp.plot import pyplot, save_figure

    shape = _image_shape(layer.in_dim, image_shape)
    n = layer.n_neurons
    ncols = ncols or min(n, 5)
    nrows = -(-n // ncols)
    maps = [neuron_weight_map(layer, i, weighted_by_soma).reshape(shape) for i in range(n)]
    lim = max(float(np.max(np.abs(m))) for m in maps) or 1.0
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.2 * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < n:
            im = ax.imshow(maps[i], cmap="coolwarm", vmin=-lim, vmax=lim)
            ax.set_title(f"neuron {i}", fontsize=8)
        else:
            ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02)
    return save_figure(fig, path) if path is not None else fig


def plot_eigenvalue_spectrum(eigenvalues, path=None, *, title: str = "eigenvalue spectrum",
                             log: bool = True):
    """Sorted eigenvalue spectra (one line per entry of a dict ``name -> eigenvalues``).

    Parameters
    ----------
    eigenvalues : array or dict
        One set of eigenvalues, or ``name -> eigenvalues`` (not empty); magnitudes are plotted.
    path : path-like, optional
        Save the figure there and return the path; return the figure when ``None``.
    title : str, default "eigenvalue spectrum"
        The axes' title.
    log : bool, default True
        Logarithmic y axis.
    """
    from bionp.plot import pyplot, save_figure

    series = eigenvalues if isinstance(eigenvalues, dict) else {"W": eigenvalues}
    if not series:
        raise ValueError("no eigenvalues to plot")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, ev in series.items():
        ev = np.abs(np.asarray(asnumpy(ev)))
        ev = np.sort(ev)[::-1]
        ax.plot(np.arange(1, ev.size + 1), ev, marker=".", lw=1, label=str(name))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("index")
    ax.set_ylabel("|eigenvalue|")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, os.fspath(path)) if path is not None else fig
