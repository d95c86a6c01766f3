r"""Weight mirrors (Akrout, Wilson, Humphreys, Lillicrap & Tweed 2019, "Deep learning
without weight transport").

Feedback alignment (:mod:`bionp.rules.feedback_alignment`) whose feedback matrices
:math:`B_l` learn, without seeing :math:`W_l`, to mirror it.  Two modes alternate:

*Engaged mode* (learning): the usual FA update, the error sent back through
:math:`B_l` in place of :math:`W_l`,
:math:`\delta_{l-1} = f'_{l-1}(z_{l-1}) \odot (\delta_l B_l)`,
:math:`g_{W_l} = \delta_l^\top a_{l-1}`.

*Mirror mode* (after every update, ``mirror_steps`` times): the neurons feeding layer
:math:`l \ge 1` fire noise :math:`\xi_l` (``mirror_batch_size`` independent draws of the
layer's input, zero-mean with :math:`\mathbb E[\xi\xi^\top] = \sigma^2 I`, ``noise=``
:math:`\sigma`: ``noise_dist="rademacher"`` :math:`\pm\sigma`, ``"normal"``
:math:`\mathcal N(0, \sigma^2)`, ``"uniform"`` on :math:`\pm\sqrt3\sigma`);
layer :math:`l` responds through its own synapses, in its linear regime and without its
bias, :math:`y_l = W_l \xi_l`; and each feedback synapse changes by the product of the
activities at its two ends, with decay (the paper's equation, batch-averaged over the
:math:`m` draws):

.. math::

    B_l \leftarrow B_l + \frac{\eta}{m} \sum_{n=1}^{m} y_{l,n}\, \xi_{l,n}^\top
                  - \lambda B_l .

Since :math:`\mathbb E[\xi\xi^\top] = \sigma^2 I`,
:math:`\mathbb E[y \xi^\top] = \sigma^2 W_l`: :math:`B_l` moves toward the fixed point
:math:`B_l^\ast = (\eta\sigma^2/\lambda)\,W_l` with time constant :math:`1/\lambda`
mirror steps, and the sampling noise averages over about :math:`2m/\lambda` draws.  The
default ``mirror_lr=None`` takes :math:`\eta = \lambda/\sigma^2`, so that
:math:`B_l^\ast = W_l` (``metrics.weight_ratio`` near 1).  (The paper's notation stores
the transposed matrix, :math:`B_{l+1} \leftarrow B_{l+1} + \eta\, x_l y_{l+1}^\top -
\lambda B_{l+1}`; bionp's ``B[l]`` has ``W[l]``'s shape.)  The released code of the paper
draws uniform noise and drops the decay; this is the paper's version, with decay.

A mirror phase of ``warmup_steps`` steps runs when ``B`` is first drawn (before the
first update), as the paper's networks mirror before training; then ``mirror_steps``
steps follow every update (``after_step`` / ``update_after_step``), with the weights
just updated.

Convolutional layers: :math:`\xi_l` has the layer's per-sample input shape
``(C, H, W)``, :math:`y_l` is the convolution of the noise with :math:`W_l` (no bias)
and the sum runs over the pairs of noise patch and response at the :math:`P_l = H'W'`
output positions (it is the layer's own weight gradient for input :math:`\xi` and
output delta :math:`y`, the correlation of the two maps).  Each weight's sum is divided
by the number of pairs it saw, :math:`m\,c_k`, with :math:`c_k \le P_l` the positions
where kernel tap :math:`k` falls on the input rather than on zero padding (the weight
gradient of an input of ones and a delta of ones; :math:`c = 1` for a dense layer):
the same fixed point :math:`B_l^\ast = (\eta\sigma^2/\lambda) W_l` for a kernel
``(out, in, kh, kw)``, with or without padding (dividing by :math:`mP_l` would shrink
the border taps of a padded kernel).  Since every image gives :math:`P_l` samples per weight, a
conv layer draws only :math:`m_l = \lceil m / P_l \rceil` noise images per step (a dense
layer :math:`m`), so every layer averages about ``mirror_batch_size`` samples per step.
Pooling, flatten and batch norm have no ``B``.

Residual blocks (:class:`~bionp.nn.ResidualBlock`): each convolution inside a block has its
own ``B`` (``B[l]`` a dict, ``{"conv1.W": …, "conv2.W": …}`` and option B's ``"short.W"``,
as for feedback alignment) and is mirrored on its own, as a plain convolution: the noise
has that convolution's input shape (the block's input for ``conv1`` and ``short``, the
first convolution's output map for ``conv2``, :meth:`~bionp.nn.ResidualBlock.feedback_inputs`)
and the response is that convolution's alone, without batch norm, the inner activation or
the shortcut.  This is the paper's local rule: a feedback synapse sees only the two
neurons it connects.  ``balance`` sizes each kernel against the largest feedback matrix of
the network.

State: ``B`` and the generator (noise); a checkpoint resumes bit-identically.
"""

from __future__ import annotations

import numpy as np

from bionp.backend import get_array_module, to_scalar
from bionp.nn.network import is_dense_like
from bionp.rules.feedback_alignment import FeedbackAlignment
from bionp.validation import check_finite, check_number, check_real

__all__ = ["WeightMirror", "mirror_update", "mirror_increment", "half_signs", "pair_counts"]

#: noise distributions of the mirror phase, all zero-mean with covariance sigma^2 I
NOISE_DISTS = ("normal", "uniform", "rademacher")


def _response(layer, xi):
    """:math:`y = W\\xi`: the layer's response to ``xi`` without its bias."""
    params = layer.params()
    over = {"W": params["W"]}
    if params.get("b") is not None:
        over["b"] = get_array_module(xi).zeros_like(params["b"])
    return layer.forward(xi, params=over)


def mirror_update(layer, B, xi, lr: float, decay: float, counts=None):
    r"""One mirror step of one layer: :math:`(1-\lambda)B + \frac{\eta}{m c}\odot\sum_{n,p}
    y_{n,p}\xi_{n,p}^\top` with :math:`y = W\xi` (a new array; ``B`` is left alone).

    ``xi`` is ``(m, *input_shape)``; for a dense layer (:math:`P = 1`)
    :math:`\sum_n y_n\xi_n^\top = y^\top \xi`, for a convolution the correlation of the
    maps over the :math:`P = H'W'` output positions (the layer's weight gradient for input
    ``xi`` and delta ``y``), each weight's sum divided by the number of pairs it saw
    (``counts``, :func:`pair_counts`; computed when not given).

    Parameters
    ----------
    layer : Dense or Conv2D
        The layer (its forward weights :math:`W`).
    B : array
        Feedback weights, shape of ``layer``'s ``W``.
    xi : array
        Mirror inputs :math:`\xi` ``(m, *input_shape)``.
    lr : float
        Mirror learning rate :math:`\eta`.
    decay : float
        Weight decay :math:`\lambda` of ``B``.
    counts : array, optional
        Pairs per weight (:func:`pair_counts`); computed when ``None``.
    """
    G = mirror_increment(layer, xi, lr, counts)
    G += B * B.dtype.type(1.0 - decay)
    return G


def mirror_increment(layer, xi, lr: float, counts=None):
    r"""The Hebbian part of a mirror step, :math:`\frac{\eta}{m c}\odot\sum_{n,p}
    y_{n,p}\xi_{n,p}^\top` (:func:`mirror_update` without the decay; a new array).

    Parameters
    ----------
    layer : layer
        A dense or conv layer; its response to the noise is :math:`y`.
    xi : array
        The injected noise, ``(m, ...)`` in the layer's input shape.
    lr : float
        The mirror learning rate :math:`\eta`.
    counts : array or None
        Per-weight counts :math:`c` of the terms summed (conv layers); ``None``: computed
        from the layer and the noise shape (1 for a dense layer).
    """
    m = int(xi.shape[0])
    if counts is None and getattr(xi, "ndim", 0) == 2 and is_dense_like(layer):
        # a dense layer, directly: y = xi W^T, sum_n y_n xi_n^T = y^T xi (two GEMMs)
        xp = get_array_module(xi)
        G = xp.matmul(xp.matmul(xi, layer.params()["W"].T).T, xi)
        G *= G.dtype.type(lr / m)
        return G
    y = _response(layer, xi)
    G = layer.backward(xi, y, need_input_grad=False)[0]["W"]
    if counts is None:
        counts = pair_counts(layer, tuple(xi.shape[1:]), G.dtype)
    G *= G.dtype.type(lr / m)
    if counts is not None:  # None: a dense layer, one pair per image
        G /= counts
    return G


def half_signs(rng, shape, dtype, xp):
    """:math:`\\pm\\tfrac12` with equal probability, one bit of ``rng.random_raw`` each (bit
    ``j`` of byte ``i`` is draw ``8i + j``: the bits of
    :func:`bionp.rules.perturbation.rademacher`).

    Parameters
    ----------
    rng : bionp.random.Generator
        The stream the bits come from.
    shape : tuple of int
        Shape of the result.
    dtype : numpy.dtype
        Float dtype of the result.
    xp : module
        Array module of the result.
    """
    n = 1
    for d in shape:
        n *= int(d)
    words = rng.random_raw(-(-n // 64), xp=xp)
    bits = xp.unpackbits(words.view(xp.uint8), bitorder="little")[:n]
    out = bits.astype(dtype)
    out -= dtype.type(0.5)
    return out.reshape(shape)


def pair_counts(layer, input_shape, dtype):
    """Per weight, the output positions where it meets the input rather than padding
    (``W``'s shape; the weight gradient of ones), or ``None`` for a dense layer (1 each).

    Parameters
    ----------
    layer : Dense or Conv2D
        The layer.
    input_shape : tuple of int
        One sample's input shape (no batch axis).
    dtype : dtype
        Float dtype of the counts.
    """
    if len(input_shape) < 2:
        return None
    xp = get_array_module(layer.params()["W"])
    ones = xp.ones((1,) + tuple(input_shape), dtype=dtype)
    out_shape = (1,) + tuple(layer.output_shape_for(tuple(input_shape)))
    counts = layer.backward(ones, xp.ones(out_shape, dtype=dtype), need_input_grad=False)[0]["W"]
    xp.maximum(counts, 1, out=counts)  # a tap that never meets the input gets no update
    return counts


class WeightMirror(FeedbackAlignment):
    """Weight mirrors: FA whose ``B`` learns ``W`` from noise in mirror phases (module
    docstring for the maths).

    Parameters
    ----------
    mirror_steps : int >= 1, default 1
        Mirror steps after every update.
    noise : float > 0, default 0.1
        :math:`\\sigma`, the standard deviation of the injected noise.
    mirror_lr : float > 0 or None
        :math:`\\eta`; ``None`` takes ``decay / noise**2`` (then ``B`` tends to ``W``).
    decay : float in [0, 1), default 0.005
        :math:`\\lambda` per mirror step.
    mirror_batch_size : int >= 1, default 48
        Noise draws :math:`m` per mirror step.
    warmup_steps : int >= 0, default 500
        Mirror steps when ``B`` is first drawn, before the first update.
    noise_dist : {"rademacher", "normal", "uniform"}, default ``"rademacher"``
        Distribution of :math:`\\xi` (all zero-mean with covariance :math:`\\sigma^2 I`, so
        the same fixed point).  Rademacher noise costs one random bit per draw (a Gaussian
        draw from bionp's generator costs more than the mirror's products) and, its
        :math:`\\xi_i^2` being exactly :math:`\\sigma^2`, averages slightly faster.
    balance : float >= 1, default 4
        A layer whose ``B`` has :math:`k` times fewer entries than the largest (its mirror
        step is :math:`k` times cheaper) takes :math:`k_l = \\min(\\lfloor k\\rfloor,
        \\text{balance})` times the draws, the decay and the mirror learning rate: the same
        noise averaging (:math:`m_l/\\lambda_l` fixed) and the same fixed point, tracking
        :math:`k_l` times faster (:meth:`boosts`).  ``1`` treats every layer alike.
        ``decay * balance`` must be < 1.
    init, scale, rng : as for :class:`~bionp.rules.FeedbackAlignment`
        ``B``'s initial draw; ``rng`` draws the noise too.

    Notes
    -----
    Tracking against noise.  ``B`` is an exponential average of ``W`` over about
    :math:`1/\\lambda` mirror steps, with a sampling error of about
    :math:`\\sqrt{n_{in}\\lambda/(2m)}` radians (6.6 degrees at the defaults,
    :math:`n_{in} = 256`); when ``W`` moves faster than that average follows, ``B`` lags it
    and the rule becomes partly plain FA.  In the 784-256-256-10 ReLU MLP with SGD
    (Nesterov 0.9) at lr 0.05 the output layer's ``W`` turns by tens of degrees within
    a few hundred updates: with the former defaults (Gaussian noise, ``decay=0.005``,
    ``m = 64``, no balance) ``B[2]`` lagged 30-40 degrees behind, ``||W||`` grew and the
    loss went to NaN at update 393 (FA itself reaches losses of ~10^3 there).  The
    balance gives the cheap output layer 4x the decay (and draws) and removes that lag:
    after one epoch (lr 0.02, ``examples/compare_rules.py``'s defaults) the angles are
    about 7 and 8 degrees, and at lr 0.05 training is stable (9 and 14 degrees).
    A mirror step costs about :math:`2 m_l |W_l|` multiply-adds per layer plus one
    random bit per draw (``benchmarks/feedback_family.py`` times the epoch against
    backprop's).
    """

    name = "weight_mirror"

    def __init__(self, mirror_steps: int = 1, noise: float = 0.1, mirror_lr=None,
                 decay: float = 0.005, mirror_batch_size: int = 48, warmup_steps: int = 500,
                 init="normal", scale=None, rng=None, noise_dist: str = "rademacher",
                 balance: float = 4.0):
        self.mirror_steps = check_number("mirror_steps", mirror_steps, low=1, integer=True,
                                         hint=" (mirror steps after every update)")
        self.noise = check_real("noise", noise, low=0, low_open=True)
        self.decay = check_real("decay", decay, low=0, high=1, high_open=True)
        self.mirror_lr = (None if mirror_lr is None
                          else check_real("mirror_lr", mirror_lr, low=0, low_open=True))
        if self.mirror_lr is None and self.decay == 0:
            raise ValueError("mirror_lr=None takes decay / noise**2, which is 0 with decay=0: "
                             "give mirror_lr (> 0) or a decay > 0")
        self.mirror_batch_size = check_number("mirror_batch_size", mirror_batch_size, low=1,
                                              integer=True)
        self.warmup_steps = check_number("warmup_steps", warmup_steps, low=0, integer=True)
        if noise_dist not in NOISE_DISTS:
            raise ValueError(f"noise_dist must be one of {', '.join(map(repr, NOISE_DISTS))}, "
                             f"got {noise_dist!r}")
        self.noise_dist = noise_dist
        self.balance = check_real("balance", balance, low=1)
        if self.decay * self.balance >= 1:
            raise ValueError(f"decay * balance must be < 1 (a layer's decay is at most "
                             f"decay * balance), got decay={self.decay!r}, "
                             f"balance={self.balance!r}")
        super().__init__(init=init, scale=scale, rng=rng)

    @property
    def eta(self) -> float:
        """The mirror learning rate in use (:math:`\\lambda/\\sigma^2` when ``mirror_lr`` is
        None)."""
        return self.mirror_lr if self.mirror_lr is not None else self.decay / self.noise ** 2

    def initialize(self, net):
        """Draw ``B`` and run the first mirror phase (``warmup_steps``); returns ``self``."""
        self._check_blocks(net)
        super().initialize(net)
        if self.warmup_steps:
            self.mirror(net, self.warmup_steps)
        return self

    def mirror(self, net, steps: int = 1) -> None:
        """Run ``steps`` mirror steps on every layer with a feedback matrix (and on every
        convolution inside a residual block).

        All layers' new matrices are computed and checked first: if one is not finite
        (NaN/Inf weights) a ``ValueError`` names the layer, and neither ``B`` nor the
        generator has changed.
        """
        steps = check_number("steps", steps, low=1, integer=True)
        B = self._feedback(net)
        plan = self._plan(net, B)
        saved = self._rng.get_state()

        def target(l, key):
            return B[l] if key is None else B[l][key]

        # one step: every increment is checked before B changes in place; several: copies
        new = {(l, key): (target(l, key) if steps == 1 else target(l, key).copy())
               for l, key, *_ in plan}
        for _ in range(steps):
            inc = {}
            for l, key, layer, W, shape, counts, eta, lam in plan:
                u, c = self._draw(shape, W)
                with np.errstate(all="ignore"):  # host arrays; non-finite results are caught
                    G = inc[l, key] = mirror_increment(layer, u, eta * c * c, counts)
                xp = get_array_module(G)
                if not bool(to_scalar(xp.all(xp.isfinite(G)))):
                    self._rng.set_state(saved)
                    where = f"layer {l}" + ("" if key is None else f" ({key})")
                    try:  # names the cause: weights that diverged, else an overflow
                        check_finite(W, f"W[{l}]" if key is None else f"W[{l}][{key!r}]",
                                     "the network diverged; B and the generator were left "
                                     "unchanged")
                    except ValueError as exc:
                        raise ValueError(f"WeightMirror: the mirror step of {where} needs "
                                         f"finite weights: {exc}") from None
                    raise ValueError(f"WeightMirror: the mirror step of {where} gives a "
                                     "feedback matrix with NaN or Inf (overflow: lower mirror_lr "
                                     "or noise); B and the generator were left unchanged")
            for l, key, layer, W, shape, counts, eta, lam in plan:
                new[l, key] *= new[l, key].dtype.type(1.0 - lam)
                new[l, key] += inc[l, key]
        if steps > 1:
            for (l, key), b in new.items():  # in place: optimisers or views holding B see it
                target(l, key)[...] = b

    def boosts(self, net) -> list:
        """Per layer, the factor :math:`k_l` on the noise draws, decay and mirror learning
        rate (``None`` where a layer has no feedback matrix; a dict per weight for a
        residual block; class docstring)."""
        B = self._feedback(net)
        sizes = [int(b.size) for m in B if m is not None
                 for b in (m.values() if isinstance(m, dict) else (m,))]
        largest = max(sizes)

        def k(b):
            return max(1.0, min(self.balance, float(int(largest / int(b.size)))))

        return [None if m is None else {key: k(b) for key, b in m.items()}
                if isinstance(m, dict) else k(m) for m in B]

    def _plan(self, net, B) -> list:
        """``(l, key, layer, W, noise shape, pair counts, eta, decay)`` of every weight with a
        feedback matrix (``key`` None and ``layer`` the network's layer for a plain layer;
        inside a residual block the weight's name and its convolution)."""
        key = (id(net), tuple(id(b) for b in B),
               tuple(tuple(map(id, layer.feedback_weights().values()))
                     if getattr(layer, "composite", False) else id(layer.params().get("W"))
                     for layer in net.layers))
        cached = self.__dict__.get("_plan_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        self._check_blocks(net)
        shapes = getattr(net, "shapes", None)
        plan = []
        for l, ks in enumerate(self.boosts(net)):
            if ks is None:
                continue
            layer = net.layers[l]
            if isinstance(ks, dict):
                inputs = layer.feedback_inputs(tuple(shapes[l]))
                items = [(name,) + tuple(inputs[name]) + (k,) for name, k in ks.items()]
            else:
                W = layer.params()["W"]
                in_shape = tuple(shapes[l]) if shapes is not None else (int(W.shape[1]),)
                items = [(None, layer, in_shape, ks)]
            for name, sub, in_shape, k in items:
                W = sub.params()["W"]
                m = int(round(self.mirror_batch_size * k))
                out_shape = (tuple(sub.output_shape_for(in_shape)) if len(in_shape) > 1
                             else None)
                plan.append((l, name, sub, W, (self._images(out_shape, m),) + in_shape,
                             self._counts(sub, (l, name), in_shape, W.dtype), self.eta * k,
                             self.decay * k))
        self._plan_cache = (key, plan)  # the arrays are updated in place: one plan per net
        return plan

    @staticmethod
    def _check_blocks(net):
        """A block with several weights must say where each one's input comes from."""
        for l, layer in enumerate(getattr(net, "layers", ())):
            if getattr(layer, "composite", False) and not hasattr(layer, "feedback_inputs"):
                raise ValueError(
                    f"WeightMirror mirrors each weight by sending noise through it alone, but "
                    f"layer {l} ({layer!r}) holds several weights and does not give each "
                    "one's input (feedback_inputs()): train it with "
                    "FeedbackAlignment, KolenPollack, SignSymmetry or Backprop")

    def _draw(self, shape, W):
        """``(u, c)``: noise :math:`\\xi = c\\,u` of covariance :math:`\\sigma^2 I` and zero mean,
        of the distribution ``noise_dist``, in ``W``'s dtype and backend.  Rademacher noise
        comes as signs :math:`u = \\pm\\tfrac12` (one random bit each, no multiply) with
        :math:`c = 2\\sigma`; the mirror update is bilinear in :math:`\\xi`, so it takes
        :math:`u` with its learning rate times :math:`c^2`."""
        xp = get_array_module(W)
        if self.noise_dist == "rademacher":
            return half_signs(self._rng, shape, W.dtype, xp), 2.0 * self.noise
        return self.draw_noise(shape, W), 1.0

    def draw_noise(self, shape, W):
        """:math:`\\xi` of ``shape``: zero-mean noise of covariance :math:`\\sigma^2 I` in ``W``'s
        dtype and backend, of the distribution ``noise_dist`` (draws from the rule's generator)."""
        xp = get_array_module(W)
        if self.noise_dist == "rademacher":
            u, c = self._draw(shape, W)
            u *= u.dtype.type(c)
            return u
        if self.noise_dist == "uniform":
            a = self.noise * 3.0 ** 0.5  # variance a^2 / 3 = sigma^2
            return self._rng.uniform(-a, a, shape, dtype=W.dtype, xp=xp)
        return self._rng.normal(0.0, self.noise, shape, dtype=W.dtype, xp=xp)

    def _counts(self, layer, where, in_shape, dtype):
        """:func:`pair_counts` of the weight at ``where`` (layer, key), computed once per
        shape."""
        cache = self.__dict__.setdefault("_pair_counts", {})
        key = (where, in_shape, str(dtype), get_array_module(layer.params()["W"]).__name__)
        if key not in cache:
            cache[key] = pair_counts(layer, in_shape, dtype)
        return cache[key]

    @staticmethod
    def _images(out_shape, m) -> int:
        """Noise images per step for a layer with per-sample output ``out_shape`` (None for a
        dense layer) of ``m`` draws: ``ceil(m / P)`` with ``P`` its output positions per
        image (1 for a dense layer)."""
        if out_shape is None or len(out_shape) < 2:
            return m
        positions = 1
        for s in out_shape[1:]:
            positions *= int(s)
        return max(1, -(-m // positions))

    def update_after_step(self, net, grads, lr) -> None:
        """The mirror phase after an update: ``mirror_steps`` mirror steps (``lr`` unused)."""
        self.mirror(net, self.mirror_steps)

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a ``B`` holding NaN or Inf is refused before anything
        changes."""
        for l, b in enumerate(state.get("B") or []):
            for key, m in (b.items() if isinstance(b, dict) else ((None, b),)):
                if m is None:
                    continue
                xp = get_array_module(m)
                if not bool(to_scalar(xp.all(xp.isfinite(m)))):
                    where = f"B[{l}]" if key is None else f"B[{l}][{key!r}]"
                    raise ValueError(f"state '{where}' holds NaN or Inf: refused, nothing was "
                                     "changed")
        super().load_state_dict(state)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(mirror_steps=self.mirror_steps, noise=self.noise, mirror_lr=self.mirror_lr,
                   decay=self.decay, mirror_batch_size=self.mirror_batch_size,
                   warmup_steps=self.warmup_steps, noise_dist=self.noise_dist,
                   balance=self.balance)
        return cfg
