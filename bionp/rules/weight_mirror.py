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
layer's input, :math:`\xi \sim \mathcal N(0, \sigma^2)`, ``noise=`` :math:`\sigma`);
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

State: ``B`` and the generator (noise); a checkpoint resumes bit-identically.
"""

from __future__ import annotations

from bionp.backend import get_array_module, to_scalar
from bionp.rules.feedback_alignment import FeedbackAlignment
from bionp.validation import check_finite, check_number, check_real

__all__ = ["WeightMirror", "mirror_update", "pair_counts"]


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
    """
    y = _response(layer, xi)
    grads, _ = layer.backward(xi, y, need_input_grad=False)
    G = grads["W"]
    m = int(xi.shape[0])
    out = B * B.dtype.type(1.0 - decay)
    if counts is None:
        counts = pair_counts(layer, tuple(xi.shape[1:]), B.dtype)
    if counts is None:  # a dense layer: one pair per image
        out += G * G.dtype.type(lr / m)
    else:
        G *= G.dtype.type(lr / m)
        G /= counts
        out += G
    return out


def pair_counts(layer, input_shape, dtype):
    """Per weight, the output positions where it meets the input rather than padding
    (``W``'s shape; the weight gradient of ones), or ``None`` for a dense layer (1 each)."""
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
    mirror_batch_size : int >= 1, default 64
        Noise draws :math:`m` per mirror step.
    warmup_steps : int >= 0, default 500
        Mirror steps when ``B`` is first drawn, before the first update.
    init, scale, rng : as for :class:`~bionp.rules.FeedbackAlignment`
        ``B``'s initial draw; ``rng`` draws the noise too.

    Notes
    -----
    The defaults' steady state, measured with fixed weights (784-256-256-10 ReLU MLP,
    He init): the angle between ``B`` and ``W`` settles near 6 degrees in both layers
    above the first (about :math:`\\sqrt{n_{in}\\lambda/(2m)}` radians: a smaller
    ``decay`` or a larger ``mirror_batch_size`` averages more noise; 8 degrees at
    ``decay=0.01``), with ``||B||/||W||`` near 1.  A mirror step costs about
    :math:`2 m\\,|W_l|` multiply-adds per layer (``m = 64``: 8 % of a training step of
    batch 128 in that MLP) plus the noise draws.
    """

    name = "weight_mirror"

    def __init__(self, mirror_steps: int = 1, noise: float = 0.1, mirror_lr=None,
                 decay: float = 0.005, mirror_batch_size: int = 64, warmup_steps: int = 500,
                 init="normal", scale=None, rng=None):
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
        super().__init__(init=init, scale=scale, rng=rng)

    @property
    def eta(self) -> float:
        """The mirror learning rate in use (:math:`\\lambda/\\sigma^2` when ``mirror_lr`` is
        None)."""
        return self.mirror_lr if self.mirror_lr is not None else self.decay / self.noise ** 2

    def initialize(self, net):
        """Draw ``B`` and run the first mirror phase (``warmup_steps``); returns ``self``."""
        super().initialize(net)
        if self.warmup_steps:
            self.mirror(net, self.warmup_steps)
        return self

    def mirror(self, net, steps: int = 1) -> None:
        """Run ``steps`` mirror steps on every layer with a feedback matrix.

        All layers' new matrices are computed and checked first: if one is not finite
        (NaN/Inf weights) a ``ValueError`` names the layer, and neither ``B`` nor the
        generator has changed.
        """
        steps = check_number("steps", steps, low=1, integer=True)
        B = self._feedback(net)
        shapes = getattr(net, "shapes", None)
        for l in range(1, len(B)):
            if B[l] is not None:
                try:
                    check_finite(net.layers[l].params()["W"], f"W[{l}]",
                                 "the network diverged; B and the generator were left unchanged")
                except ValueError as exc:
                    raise ValueError(f"WeightMirror: the mirror step of layer {l} needs finite "
                                     f"weights: {exc}") from None
        saved = self._rng.get_state()
        new = list(B)
        eta, lam = self.eta, self.decay
        for _ in range(steps):
            for l in range(1, len(new)):
                if new[l] is None:
                    continue
                layer = net.layers[l]
                W = layer.params()["W"]
                in_shape = tuple(shapes[l]) if shapes is not None else (int(W.shape[1]),)
                xi = self._rng.normal(0.0, self.noise, (self._images(layer, shapes, l),)
                                      + in_shape, dtype=W.dtype)
                new[l] = mirror_update(layer, new[l], xi, eta, lam,
                                       self._counts(layer, l, in_shape, W.dtype))
        xp = get_array_module(*[b for b in new if b is not None])
        for l, b in enumerate(new):
            if b is None:
                continue
            if not bool(to_scalar(xp.all(xp.isfinite(b)))):
                self._rng.set_state(saved)
                raise ValueError(f"WeightMirror: the mirror step of layer {l} gives a feedback "
                                 "matrix with NaN or Inf (overflow: lower mirror_lr or noise); "
                                 "B and the generator were left unchanged")
        for l, b in enumerate(new):  # in place: optimisers or views holding B see the update
            if b is not None:
                B[l][...] = b

    def _counts(self, layer, l, in_shape, dtype):
        """:func:`pair_counts` of layer ``l``, computed once per shape."""
        cache = self.__dict__.setdefault("_pair_counts", {})
        key = (l, in_shape, str(dtype), get_array_module(layer.params()["W"]).__name__)
        if key not in cache:
            cache[key] = pair_counts(layer, in_shape, dtype)
        return cache[key]

    def _images(self, layer, shapes, l) -> int:
        """Noise images per step for layer ``l``: ``ceil(m / P)`` with ``P`` its output
        positions per image (1 for a dense layer)."""
        m = self.mirror_batch_size
        if shapes is None or len(shapes[l + 1]) < 2:
            return m
        positions = 1
        for s in shapes[l + 1][1:]:
            positions *= int(s)
        return max(1, -(-m // positions))

    def update_after_step(self, net, grads, lr) -> None:
        """The mirror phase after an update: ``mirror_steps`` mirror steps (``lr`` unused)."""
        self.mirror(net, self.mirror_steps)

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a ``B`` holding NaN or Inf is refused before anything
        changes."""
        for l, b in enumerate(state.get("B") or []):
            if b is None:
                continue
            xp = get_array_module(b)
            if not bool(to_scalar(xp.all(xp.isfinite(b)))):
                raise ValueError(f"state 'B[{l}]' holds NaN or Inf: refused, nothing was changed")
        super().load_state_dict(state)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(mirror_steps=self.mirror_steps, noise=self.noise, mirror_lr=self.mirror_lr,
                   decay=self.decay, mirror_batch_size=self.mirror_batch_size,
                   warmup_steps=self.warmup_steps)
        return cfg
