r"""Diagnostics for learning rules: accuracy, gradient SNR, alignment with backprop.

Gradient signal-to-noise ratio (the Microlearning tutorial's definition)
------------------------------------------------------------------------
For each parameter :math:`i` of a layer, with :math:`g_{n,i}` the rule's
gradient estimate computed on sample :math:`n` **alone** (a batch of one, fresh
noise per sample for the perturbation rules), over :math:`n = 1..S`:

.. math::

    \mathrm{SNR} = \frac1P \sum_{i=1}^P
        \frac{|\bar g_i|}{\operatorname{std}_n(g_{n,i}) + \epsilon},
    \qquad \bar g_i = \frac1S\sum_n g_{n,i},

with the population standard deviation and :math:`\epsilon = 10^{-3}`, per
layer over its ``W`` and (by default) ``b``.  The tutorial reports it for the
first layer (``W_h`` with its bias column).  The moments are accumulated in
float64 running sums :math:`\sum g` and :math:`\sum g^2`, chunk by chunk; for
rules whose per-sample estimate is an outer product
:math:`g_n = \delta_n a_n^\top` (backprop, FA, DFA, KP, NP) each chunk costs two
matmuls, :math:`\sum_n \delta_n a_n^\top = \delta^\top a` and
:math:`\sum_n (\delta_n a_n^\top)^{\odot 2} = (\delta^{\odot 2})^\top a^{\odot 2}`, so
no ``(samples, params)`` array is ever built.  Weight perturbation loops over
samples.  Note ``ε`` makes the SNR depend on the gradients' scale: the
tutorial's backprop update is ``-N/2`` times bionp's gradient (``-1/2`` per
sample), pass ``scale=0.5`` to reproduce its numbers; for WP/NP its scale is 1.

Cosine similarity and angle
---------------------------
:math:`\cos(g_1, g_2) = g_1^\top g_2 / (\|g_1\|\|g_2\|)` of flattened per-layer
gradients (``W`` and, by default, ``b``), and the angle
:math:`\arccos(\cos)` in degrees.

Feedback matrices against the weights
-------------------------------------
For the rules that send the error back through a matrix :math:`B_l` in place of
:math:`W_l` (feedback alignment, Kolen-Pollack, sign symmetry, weight mirrors; backprop
with :math:`B_l = W_l`), per layer :math:`l \ge 1` with weights:

.. math::

    \text{layer alignment} = \arccos\frac{\langle B_l, W_l\rangle_F}
        {\|B_l\|_F\,\|W_l\|_F} \;\text{(degrees)}, \qquad
    \text{weight ratio} = \frac{\|B_l\|_F}{\|W_l\|_F}

(biotorch's "layer alignment" and "weight ratio"; Akrout et al. 2019 plot the first).
:func:`layer_alignment` and :func:`weight_ratio` cost two dot products per layer and
change no state, so they can be logged every epoch: :func:`alignment_diagnostics` gives
them as Trainer diagnostics.  Layers without a feedback matrix (the first, pooling,
batch norm) read ``nan``.

What the diagnostics measure
----------------------------
:func:`compare_to_backprop`, :func:`angle_to_backprop`, :func:`gradient_snr` and
:func:`gradient_moments` measure the rule's **error-driven** estimate
(:meth:`bionp.rules.Rule.error_gradients`): a rule's own regularisation (Kolen-Pollack's
weight decay :math:`\lambda\theta`, :meth:`bionp.rules.Rule.regularization`) is left out
unless ``include_regularization=True``.  The decay is not an error signal: with it,
Kolen-Pollack's output layer, whose error signal is backprop's exactly, would read as
tens of degrees off at initialisation.  All of them are pure functions of the current
parameters, so they can be measured before the first epoch (epoch 0).
"""

from __future__ import annotations

import math

from bionp.backend import get_array_module, to_scalar

__all__ = ["accuracy", "gradient_snr", "gradient_moments", "cosine_similarity",
           "alignment_angle", "compare_to_backprop", "angle_to_backprop", "rule_gradients",
           "robustness_curve", "feedback_matrices", "layer_alignment", "weight_ratio",
           "alignment_diagnostics"]


def accuracy(out_or_logits, labels) -> float:
    """Percentage of rows whose argmax equals the label (``(N,)`` ints or ``(N, C)`` one-hot).

    Parameters
    ----------
    out_or_logits : array (N, C)
        Network outputs (probabilities or logits: only the argmax counts).
    labels : array (N,) of int, or (N, C) one-hot

    Returns
    -------
    float
        In percent.

    Examples
    --------
    >>> import numpy as np
    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 1, 1]))
    66.66666666666667
    """
    xp = get_array_module(out_or_logits, labels)
    if out_or_logits.ndim != 2:
        raise ValueError(f"outputs must have shape (N, C), got {tuple(out_or_logits.shape)}")
    n = out_or_logits.shape[0]
    if labels.ndim == 2:
        if tuple(labels.shape) != tuple(out_or_logits.shape):
            raise ValueError(f"one-hot labels must have shape {tuple(out_or_logits.shape)}, "
                             f"got {tuple(labels.shape)}")
        labels = xp.argmax(labels, axis=1)
    elif labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) or ({n}, C), got {tuple(labels.shape)}")
    if n == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    pred = xp.argmax(out_or_logits, axis=1)
    return 100.0 * float(to_scalar(xp.count_nonzero(pred == labels))) / n


def _flat(g, include_bias):
    """One float64 vector of a layer's gradient: every array of the dict in key order, biases
    (``"b"``, or any key ending in ``"_b"``) only with ``include_bias``."""
    parts = [v.reshape(-1) for k, v in g.items()
             if v is not None and (include_bias or not (k == "b" or k.endswith("_b")))]
    xp = get_array_module(*parts)
    return xp.concatenate(parts).astype(xp.float64) if len(parts) > 1 else \
        parts[0].astype(xp.float64)


def cosine_similarity(g_rule, g_true, include_bias: bool = True) -> list:
    """Per-layer cosine similarity of two gradient lists (``[{"W", "b"}, ...]``), as floats.

    A single dict or array pair is also accepted (returns a one-element list).
    A layer where either gradient is all zero gives ``nan``, and so does a layer without
    parameters (pooling, flatten: both dicts empty).

    Parameters
    ----------
    g_rule, g_true : list of dict of arrays, a dict, or an array
        The two gradients, layer by layer.
    include_bias : bool, default True
        Count the biases (``"b"``) with the weights of each layer.
    """
    if isinstance(g_rule, dict) or hasattr(g_rule, "shape"):
        g_rule, g_true = [g_rule], [g_true]
    if len(g_rule) != len(g_true):
        raise ValueError(f"gradient lists have {len(g_rule)} and {len(g_true)} layers")
    out = []
    for a, b in zip(g_rule, g_true):
        a = a if isinstance(a, dict) else {"W": a}
        b = b if isinstance(b, dict) else {"W": b}
        if not a and not b:  # a parameter-free layer
            out.append(float("nan"))
            continue
        fa, fb = _flat(a, include_bias), _flat(b, include_bias)
        if fa.shape != fb.shape:
            raise ValueError(f"gradients have different sizes ({fa.shape[0]} and {fb.shape[0]})")
        xp = get_array_module(fa, fb)
        num = to_scalar(xp.dot(fa, fb))
        den = math.sqrt(to_scalar(xp.dot(fa, fa))) * math.sqrt(to_scalar(xp.dot(fb, fb)))
        out.append(num / den if den > 0 else float("nan"))
    return out


def alignment_angle(g_rule, g_true, include_bias: bool = True) -> list:
    """Per-layer angle in degrees between two gradient lists (``arccos`` of the cosine).

    Parameters
    ----------
    g_rule, g_true, include_bias
        As for :func:`cosine_similarity`.
    """
    return [math.degrees(math.acos(max(-1.0, min(1.0, c)))) if c == c else float("nan")
            for c in cosine_similarity(g_rule, g_true, include_bias)]


def rule_gradients(rule, net, x, target, loss_fn, include_regularization: bool = False) -> list:
    """``rule``'s error-driven gradient estimate (:meth:`~bionp.rules.Rule.error_gradients`),
    or with ``include_regularization`` the full :meth:`~bionp.rules.Rule.gradients` it trains
    with (a rule object without ``error_gradients`` gives its ``gradients``).

    Parameters
    ----------
    rule : Rule
        Any rule of :mod:`bionp.rules` (its state is not changed).
    net : Sequential or MLP
    x, target : arrays
        A batch and its targets (labels or one-hot rows), as for ``rule.gradients``.
    loss_fn : Loss
    include_regularization : bool, default False
    """
    if include_regularization or not hasattr(rule, "error_gradients"):
        return rule.gradients(net, x, target, loss_fn)
    return rule.error_gradients(net, x, target, loss_fn)


def compare_to_backprop(rule, net, x, target, loss_fn, include_bias: bool = True,
                        reference=None, include_regularization: bool = False) -> list:
    """Per-layer cosine similarity between ``rule``'s update and backprop's on ``(x, target)``.

    ``reference`` is the exact rule to compare with (default ``Backprop()``).  The rules'
    error-driven updates are compared (:func:`rule_gradients`): Kolen-Pollack's weight
    decay is left out unless ``include_regularization=True``.  Measurable at any time,
    before training included (epoch 0).

    Parameters
    ----------
    rule : Rule
        Any rule of :mod:`bionp.rules` (its state is not changed).
    net : Sequential or MLP
    x, target : arrays
        A batch and its targets (labels or one-hot rows), as for ``rule.gradients``.
    loss_fn : Loss
    include_bias : bool, default True
    reference : Rule or None
    include_regularization : bool, default False
    """
    if reference is None:
        from bionp.rules import Backprop

        reference = Backprop()
    return cosine_similarity(
        rule_gradients(rule, net, x, target, loss_fn, include_regularization),
        rule_gradients(reference, net, x, target, loss_fn, include_regularization), include_bias)


def angle_to_backprop(rule, net, x, target, loss_fn, include_bias: bool = True,
                      reference=None, include_regularization: bool = False) -> list:
    """Per-layer angle in degrees between ``rule``'s update and backprop's
    (:func:`compare_to_backprop`'s cosines as angles; ``nan`` where a gradient is zero).

    Parameters
    ----------
    rule, net, x, target, loss_fn, include_bias, reference, include_regularization
        As for :func:`compare_to_backprop`.
    """
    return [math.degrees(math.acos(max(-1.0, min(1.0, c)))) if c == c else float("nan")
            for c in compare_to_backprop(rule, net, x, target, loss_fn, include_bias, reference,
                                         include_regularization)]


def gradient_moments(rule, net, x, target, loss_fn, chunk_size: int = 250,
                     include_regularization: bool = False):
    """Float64 sums over samples of the per-sample gradients and of their squares.

    Returns ``(n_samples, sums, sums_sq)``: lists aligned with the layers of
    ``{"W", "b"}`` arrays.  Memory: two float64 copies of the parameters plus one
    chunk of activations.  The per-sample gradients are the error-driven ones unless
    ``include_regularization`` (see the module docstring).

    Parameters
    ----------
    rule : Rule
        Any rule of :mod:`bionp.rules` (its state is not changed).
    net : Sequential or MLP
    x, target : arrays
        A batch and its targets (labels or one-hot rows), as for ``rule.gradients``.
    loss_fn : Loss
    chunk_size : int, default 250
        Samples whose per-sample gradients are computed at once.
    include_regularization : bool, default False
    """
    xp = get_array_module(x)
    n = int(x.shape[0])
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    sums = [{k: xp.zeros(v.shape, dtype=xp.float64) for k, v in p.items()}
            for p in net.parameters()]
    sqs = [{k: xp.zeros(v.shape, dtype=xp.float64) for k, v in p.items()}
           for p in net.parameters()]
    offsets = rule.per_sample_offsets(net) if include_regularization else None
    fast = None
    for start in range(0, n, chunk_size):
        xs, ts = x[start:start + chunk_size], target[start:start + chunk_size]
        m = int(xs.shape[0])
        fast = rule.per_sample_deltas(net, xs, ts, loss_fn)
        if fast is not None:
            inputs, deltas = fast
            for l, (a, d) in enumerate(zip(inputs, deltas)):
                a64 = a.astype(xp.float64)
                d64 = d.astype(xp.float64)
                s_w = xp.matmul(d64.T, a64)
                q_w = xp.matmul((d64 * d64).T, a64 * a64)
                s_b = xp.sum(d64, axis=0)
                q_b = xp.sum(d64 * d64, axis=0)
                off = None if offsets is None else offsets[l]
                for k, s, q in (("W", s_w, q_w), ("b", s_b, q_b)):
                    if k not in sums[l]:
                        continue
                    if off is not None:
                        c = off[k].astype(xp.float64)
                        q += 2 * c * s + m * c * c
                        s += m * c
                    sums[l][k] += s
                    sqs[l][k] += q
        else:
            for i in range(m):
                g = rule_gradients(rule, net, xs[i:i + 1], ts[i:i + 1], loss_fn,
                                   include_regularization)
                for l, d in enumerate(g):
                    for k, v in d.items():
                        v64 = v.astype(xp.float64)
                        sums[l][k] += v64
                        sqs[l][k] += v64 * v64
    return n, sums, sqs


def gradient_snr(rule, net, x, target, loss_fn, chunk_size: int = 250, epsilon: float = 1e-3,
                 include_bias: bool = True, scale: float = 1.0,
                 include_regularization: bool = False) -> list:
    """Per-layer gradient SNR, mean over parameters of ``|mean| / (std + epsilon)`` (floats).

    See the module docstring for the definition, for ``scale`` and for
    ``include_regularization`` (a rule's weight decay, left out by default).

    Parameters
    ----------
    rule : Rule
        Any rule of :mod:`bionp.rules` (its state is not changed).
    net : Sequential or MLP
    x, target : arrays
        A batch and its targets (labels or one-hot rows), as for ``rule.gradients``.
    loss_fn : Loss
    chunk_size : int, default 250
    epsilon : float, default 1e-3
        Added to the standard deviation.
    include_bias : bool, default True
    scale : float, default 1.0
        Multiplies the per-sample gradients (the tutorial's units).
    include_regularization : bool, default False
    """
    n, sums, sqs = gradient_moments(rule, net, x, target, loss_fn, chunk_size,
                                    include_regularization)
    if n == 0:
        raise ValueError("gradient_snr needs at least one sample")
    out = []
    for s_l, q_l in zip(sums, sqs):
        total, count = 0.0, 0
        for k in s_l:
            if k == "b" and not include_bias:
                continue
            xp = get_array_module(s_l[k])
            mean = s_l[k] / n
            var = q_l[k] / n - mean * mean
            xp.maximum(var, 0.0, out=var)
            ratio = xp.abs(mean) * abs(scale) / (xp.sqrt(var) * abs(scale) + epsilon)
            total += to_scalar(xp.sum(ratio))
            count += ratio.size
        out.append(total / count)
    return out


def feedback_matrices(rule, net) -> list:
    """The matrices ``rule`` sends the error back through, aligned with ``net.layers``
    (``None`` where none), without changing the rule's state.

    Sign symmetry: :meth:`~bionp.rules.SignSymmetry.current_feedback` (those of the next
    update).  Feedback alignment, Kolen-Pollack, weight mirrors: ``rule.B`` (drawn by
    ``rule.initialize(net)`` first if the rule has not been used yet: the draw the first
    update would make).  Backprop: the weights themselves.

    Parameters
    ----------
    rule : Rule
    net : Sequential or MLP
    """
    if hasattr(rule, "current_feedback"):
        return list(rule.current_feedback(net))
    if hasattr(rule, "B"):
        if rule.B is None:
            rule.initialize(net)
        B = list(rule.B)
        if len(B) != len(net.layers):
            raise ValueError(f"{type(rule).__name__} holds {len(B)} feedback matrices, the "
                             f"network has {len(net.layers)} layers: use one rule per network")
        return B
    if getattr(rule, "name", None) == "backprop":
        return [None] + [layer.params().get("W") if layer.params() else None
                         for layer in net.layers[1:]]
    raise TypeError(f"{type(rule).__name__} has no feedback matrices standing in for the "
                    "weights (layer alignment needs FeedbackAlignment, KolenPollack, "
                    "SignSymmetry, WeightMirror or Backprop)")


def _pairs(rule, net):
    """``(B_l, W_l)`` as dicts (a residual block's: one entry per weight inside, measured
    together), or ``(None, None)``."""
    B = feedback_matrices(rule, net)
    out = []
    for b, layer in zip(B, net.layers):
        if b is None:
            out.append((None, None))
            continue
        b = b if isinstance(b, dict) else {"W": b}
        W = {k: layer.params().get(k) for k in b}
        for k in b:
            if W[k] is None or tuple(b[k].shape) != tuple(W[k].shape):
                raise ValueError(f"a feedback matrix of shape {tuple(b[k].shape)} stands for "
                                 f"weights of shape {getattr(W[k], 'shape', None)}")
        out.append((b, W))
    return out


def layer_alignment(rule, net) -> list:
    """Per-layer angle in degrees between each feedback matrix :math:`B_l` and the weights
    :math:`W_l` it stands in for (``nan`` where a layer has none; module docstring).

    Parameters
    ----------
    rule : Rule
    net : Sequential or MLP
    """
    return [float("nan") if b is None else alignment_angle(b, W)[0]
            for b, W in _pairs(rule, net)]


def weight_ratio(rule, net) -> list:
    """Per-layer :math:`\\|B_l\\|_F / \\|W_l\\|_F` (``nan`` where a layer has no
    feedback matrix or zero weights).

    Parameters
    ----------
    rule : Rule
    net : Sequential or MLP
    """
    out = []
    for b, W in _pairs(rule, net):
        if b is None:
            out.append(float("nan"))
            continue
        fb, fw = _flat(b, True), _flat(W, True)
        xp = get_array_module(fb, fw)
        nw = math.sqrt(to_scalar(xp.dot(fw, fw)))
        out.append(math.sqrt(to_scalar(xp.dot(fb, fb))) / nw if nw > 0 else float("nan"))
    return out


def alignment_diagnostics(prefix: str = "") -> dict:
    """Trainer diagnostics ``{"layer_alignment": fn, "weight_ratio": fn}`` (names with
    ``prefix``), each ``fn(trainer, epoch)`` a per-layer list of the trainer's rule and
    network: ``Trainer(..., diagnostics=metrics.alignment_diagnostics(),
    diagnostics_at_start=True)`` records them at initialisation and after every epoch.

    Parameters
    ----------
    prefix : str, default ""
        Put before both names.
    """
    return {f"{prefix}layer_alignment": lambda tr, epoch: layer_alignment(tr.rule, tr.net),
            f"{prefix}weight_ratio": lambda tr, epoch: weight_ratio(tr.rule, tr.net)}


def __getattr__(name):
    # accuracy under test-time weight noise lives in its own module (bionp.robustness)
    if name == "robustness_curve":
        from bionp.robustness import robustness_curve

        return robustness_curve
    raise AttributeError(f"module 'bionp.metrics' has no attribute {name!r}")
