r"""Weight perturbation and node perturbation: gradient estimates from loss changes.

Weight perturbation (WP)
------------------------
All parameters :math:`\theta` (every layer's ``W`` and ``b``) are perturbed
jointly by :math:`\varepsilon \sim \mathcal N(0, \sigma^2 I)`; with
:math:`L` the batch-mean loss and :math:`K` samples,

.. math::

    \hat g = \frac1K \sum_{k=1}^K \frac{L(\theta + \varepsilon_k) - L(\theta)}{\sigma^2}\,
    \varepsilon_k
    \qquad\text{or, antithetic,}\qquad
    \hat g = \frac1K \sum_k
    \frac{L(\theta + \varepsilon_k) - L(\theta - \varepsilon_k)}{2\sigma^2}\,
    \varepsilon_k .

To first order :math:`L(\theta+\varepsilon) - L(\theta) \approx \nabla L^\top\varepsilon`
and :math:`\mathbb E[\varepsilon\varepsilon^\top] = \sigma^2 I`, so
:math:`\mathbb E\hat g = \nabla L` (Jabri & Flower 1992; the Microlearning
tutorial).  The tutorial adds :math:`\eta\,(L(\theta) - L(\theta+\varepsilon))\varepsilon/\sigma^2
= -\eta\hat g`, so its η equals bionp's ``lr``.

Node perturbation (NP)
----------------------
Noise :math:`\xi_{l,n} \sim \mathcal N(0, \sigma^2 I)` is added, per sample,
to the activations of every layer, hidden and output (after the activation, as
in the tutorial; for softmax + cross-entropy the output noise goes on the logits,
which is what that loss reads): :math:`\tilde a_l = f_l(\tilde a_{l-1} W_l^\top + b_l) + \xi_l`.
With per-sample losses :math:`\Delta\ell_n = \ell_n(\text{noisy}) - \ell_n(\text{clean})`,

.. math::

    h_{l,n} = \frac{\Delta\ell_n\,\xi_{l,n}}{\sigma^2}
            \approx \frac{\partial\ell_n}{\partial a_{l,n}},
    \qquad
    \delta_l = \frac1N\, f'_l(z_l) \odot h_l, \qquad
    \hat g_{W_l} = \delta_l^\top a_{l-1}, \qquad \hat g_{b_l} = \textstyle\sum_n\delta_{l,n},

one matmul per layer (no ``(batch, out, in)`` temporary); :math:`z_l, a_{l-1}` are the
clean forward pass's; with :math:`K` samples :math:`h_l` is averaged.  For a convolution
the noise is added to every unit of its output map and :math:`\hat g` is the layer's own
weight gradient of :math:`\delta_l` (:mod:`bionp.nn.conv`: :math:`\Delta X^\top`); pooling
and flatten layers have nothing to learn and get no noise.  Batch norm is refused (its
training pass depends on the batch and updates running statistics).  This
estimator (``estimator="unbiased"``) is unbiased to first order in :math:`\sigma`.

``estimator="tutorial"`` reproduces the tutorial's update exactly:
:math:`\hat g_{W_l} = \frac1N\big(\Delta\ell \odot (\tilde a_l - a_l)/\sigma^2\big)^\top
\tilde a_{l-1}`
(no :math:`f'`, the noisy difference of the *propagated* activations, the noisy
presynaptic activity); its expectation is not the gradient (for a sigmoid it is
:math:`\partial L/\partial a_l\, a_{l-1}^\top` plus cross-layer terms), and it
takes larger steps.  Its η equals bionp's ``lr``.

Mapping to the Microlearning tutorial, line by line
---------------------------------------------------
The tutorial keeps each bias as the last column of its weight matrix (an
always-on input), so "the weights" there are bionp's ``W`` *and* ``b``.

``WeightPerturbation(sigma, n_samples=1, antithetic=False, noise="gaussian")`` is its
``perturb``: one Gaussian draw :math:`\varepsilon` of every weight and bias per
batch, the loss of the batch (mean over samples of the sum over outputs of the
squared error, :class:`~bionp.nn.MSELoss`) with and without it, and the update
:math:`\theta \mathrel{+}= \eta\,(L(\theta) - L(\theta+\varepsilon))\,\varepsilon/\sigma^2`,
i.e. SGD with ``lr = η`` on this rule's :math:`\hat g`.

``NodePerturbation(sigma, estimator="tutorial")`` is its ``node_perturb``: a clean
and a noisy forward pass of the batch; in the noisy one, noise of SD σ per sample
and unit is added after the activation of the hidden layer and the noisy
activity is what the output layer receives; noise is added after the output
activation too.  :math:`\Delta\ell_n` is the per-sample loss difference; the
hidden update is the batch mean of :math:`-\Delta\ell_n (\tilde h_n - h_n)/\sigma^2`
times the input (and 1 for the bias), the output update the batch mean of
:math:`-\Delta\ell_n (\tilde y_n - y_n)/\sigma^2` times the *noisy* hidden activity;
:math:`\tilde y - y` includes the effect of the hidden noise on the output.  The
tutorial forms each mean over a ``(out, in, batch)`` array; bionp does the same sum
as one matmul.  SGD with ``lr = η``.

Measured (``examples/microlearning.py``, 3 epochs, 1000 test images): given the
tutorial's random numbers (initial weights, batches, test images, noise), bionp's rules
and Trainer reproduce the tutorial's accuracies exactly (WP 13.1, NP 47.7 at seed 12345);
with bionp's own generator the epoch-3 accuracies are other draws from the same wide
distribution over seeds (WP SD about 5 points, NP about 4); the example's docstring has
the numbers.
"""

from __future__ import annotations

import numbers

from bionp import backend_dense
from bionp.backend import get_array_module
from bionp.nn.losses import CrossEntropyLoss, per_sample_prepared
from bionp.nn.network import is_dense_like
from bionp.random import check_rng
from bionp.rules.base import Rule
from bionp.validation import check_real

__all__ = ["WeightPerturbation", "NodePerturbation"]


def rademacher(rng, shape, sigma, dtype, xp, out=None):
    r"""Draws of :math:`\pm\sigma` with equal probability, one random bit each
    (:meth:`bionp.random.Generator.rademacher`, into ``out`` if given).

    Same covariance :math:`\sigma^2 I` as Gaussian noise (so the perturbation
    estimators stay unbiased) at a fraction of the cost: 64 draws per 64-bit word.
    """
    return rng.rademacher(tuple(shape), sigma, dtype=dtype, xp=xp, out=out)


def _first_array(params):
    """The first parameter array of a list of per-layer dicts (some may be empty)."""
    for p in params:
        for v in p.values():
            return v
    raise ValueError("the network has no parameters to perturb")


def _fused(net, loss_fn) -> bool:
    return net.activations[-1].name == "softmax" and isinstance(loss_fn, CrossEntropyLoss)


def _check_sigma(sigma, n_samples):
    check_real("sigma", sigma, low=0, low_open=True)
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) \
            or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")


class WeightPerturbation(Rule):
    """Weight perturbation, :math:`\\hat g = (L(\\theta+\\varepsilon) - L(\\theta))
    \\varepsilon/\\sigma^2`.

    Parameters
    ----------
    sigma : float, default 0.1
        Standard deviation of the perturbation of every parameter.
    n_samples : int, default 1
        Perturbations averaged per call.
    antithetic : bool, default False
        Use :math:`(L(\\theta+\\varepsilon) - L(\\theta-\\varepsilon))/(2\\sigma^2)`.
    noise : {"gaussian", "rademacher"}, default ``"gaussian"``
        Distribution of each perturbation entry: :math:`\\mathcal N(0, \\sigma^2)` (the
        tutorial's) or :math:`\\pm\\sigma` with equal probability.  Both have covariance
        :math:`\\sigma^2 I`, so the estimator is unbiased either way; Rademacher noise
        costs one random bit per parameter instead of a Box–Muller normal, which is
        most of a weight-perturbation step's time on a CPU.
    rng : int, Generator or None
        Source of the perturbations.
    """

    name = "weight_perturbation"

    def __init__(self, sigma: float = 0.1, n_samples: int = 1, antithetic: bool = False,
                 noise: str = "gaussian", rng=None):
        _check_sigma(sigma, n_samples)
        if noise not in ("gaussian", "rademacher"):
            raise ValueError(f"noise must be 'gaussian' or 'rademacher', got {noise!r}")
        self.sigma = float(sigma)
        self.n_samples = n_samples
        self.antithetic = bool(antithetic)
        self.noise = noise
        self._rng = check_rng(rng)
        self._buffers = None
        self._flat = self._flat_more = None  # the noise arrays, written again when free

    def _perturbed_buffers(self, params):
        """The perturbed parameters, allocated once per network layout (reused)."""
        shapes = [{k: (tuple(v.shape), v.dtype) for k, v in p.items()} for p in params]
        first = _first_array(params)
        if self._buffers is None or self._buffers[0] != shapes or \
                get_array_module(next(iter(self._buffers[1][0].values()))) \
                is not get_array_module(first):
            xp = get_array_module(first)
            self._buffers = (shapes, [{k: xp.empty_like(v) for k, v in p.items()} for p in params])
        return self._buffers[1]

    @staticmethod
    def _check_layers(net):
        for l, layer in enumerate(getattr(net, "layers", [])):
            if getattr(layer, "stateful_training", False):
                raise ValueError(
                    f"WeightPerturbation compares the loss of the training pass with the loss "
                    f"of perturbed passes, but layer {l} ({layer!r}) normalises with batch "
                    "statistics and updates running statistics on every training pass, so the "
                    "perturbed passes would not be the same function of the parameters; train "
                    "networks with batch norm with Backprop, FeedbackAlignment, KolenPollack or "
                    "DirectFeedbackAlignment")

    def _draw(self, params, xp, first=True):
        """The noise of every parameter, drawn parameter by parameter (layer order, each
        layer's arrays in its ``params()`` order) into one flat array; returns the flat
        array (scaled in place into the gradient) and its per-parameter views.

        The flat array (from :data:`bionp.backend_dense.REUSE_MIN_BYTES` up) is kept and
        written again on the next call once nobody holds it or a view of it (``first``: the
        array that becomes the returned gradient; the later samples' array is the rule's
        own)."""
        dtype = _first_array(params).dtype
        total = sum(int(v.size) for p in params for v in p.values())
        name = "_flat" if first else "_flat_more"
        flat = backend_dense.reusable(getattr(self, name), ((total,), dtype), xp)
        if flat is None:
            flat = xp.empty(total, dtype=dtype)
            setattr(self, name, backend_dense.keepable(flat))
        views, o = [], 0
        for p in params:
            d = {}
            for k, v in p.items():
                view = flat[o:o + v.size].reshape(v.shape)
                if self.noise == "rademacher":
                    rademacher(self._rng, tuple(v.shape), self.sigma, dtype, xp, out=view)
                else:
                    self._rng.normal(0.0, self.sigma, tuple(v.shape), dtype=dtype, xp=xp, out=view)
                d[k] = view
                o += v.size
            views.append(d)
        return flat, views

    def _loss(self, net, x, params, t, loss_fn):
        if _fused(net, loss_fn):
            cache = net.forward_with(x, params, checked=True, cache=True)
            return net.output_loss(cache, t, loss_fn)
        a = net.forward_with(x, params, checked=True)
        return get_array_module(a).mean(per_sample_prepared(loss_fn, a, t))

    def gradients(self, net, x, target, loss_fn) -> list:
        self._check_layers(net)
        x, t = self._checked(net, x, target, loss_fn)
        xp = get_array_module(x)
        params = net.parameters()
        # the clean loss by a pass that keeps nothing: the same bits as _prepare's
        self.last_loss = self._loss(net, x, params, t, loss_fn)
        pert = self._perturbed_buffers(params)
        base = None if self.antithetic else self.last_loss
        inv = 1.0 / (self.sigma ** 2 * (2.0 if self.antithetic else 1.0))
        acc = grads = None
        for k in range(self.n_samples):
            flat, noise = self._draw(params, xp, first=k == 0)
            for p, e, q in zip(params, noise, pert):
                for key in p:
                    xp.add(p[key], e[key], out=q[key])
            lp = self._loss(net, x, pert, t, loss_fn)
            if self.antithetic:
                for p, e, q in zip(params, noise, pert):
                    for key in p:
                        xp.subtract(p[key], e[key], out=q[key])
                coef = lp - self._loss(net, x, pert, t, loss_fn)
            else:
                coef = lp - base
            coef = coef * coef.dtype.type(inv)
            flat *= coef
            if acc is None:
                acc, grads = flat, noise
            else:
                acc += flat
            flat = noise = None  # dropped: the next sample's draw reuses its array
        if self.n_samples > 1:
            acc *= acc.dtype.type(1.0 / self.n_samples)
        return grads

    def get_config(self) -> dict:
        return {"name": self.name, "sigma": self.sigma, "n_samples": self.n_samples,
                "antithetic": self.antithetic, "noise": self.noise}


class NodePerturbation(Rule):
    """Node perturbation: noise on the units, loss change correlated with it, one matmul per layer.

    Parameters
    ----------
    sigma : float, default 0.1
        Standard deviation of the unit noise.
    n_samples : int, default 1
        Noise samples averaged per call.
    estimator : {"unbiased", "tutorial"}, default ``"unbiased"``
        See the module docstring.
    rng : int, Generator or None
    """

    name = "node_perturbation"

    def __init__(self, sigma: float = 0.1, n_samples: int = 1, estimator: str = "unbiased",
                 rng=None):
        _check_sigma(sigma, n_samples)
        if estimator not in ("unbiased", "tutorial"):
            raise ValueError(f"estimator must be 'unbiased' or 'tutorial', got {estimator!r}")
        self.sigma = float(sigma)
        self.n_samples = n_samples
        self.estimator = estimator
        self._rng = check_rng(rng)

    def _noise_buffer(self, slot: int, l: int, z):
        """Layer ``l``'s noise buffer of sample slot ``slot`` (0: the first sample, which
        becomes the accumulator; 1: every later one), kept between calls."""
        bufs = self.__dict__.setdefault("_noise_bufs", {})
        buf = bufs.get((slot, l))
        if buf is None or buf.shape != z.shape or buf.dtype != z.dtype \
                or get_array_module(buf) is not get_array_module(z):
            buf = bufs[(slot, l)] = get_array_module(z).empty(z.shape, dtype=z.dtype)
        return buf

    def _noisy_pass(self, net, cache, fused, slot: int = 0):
        """Noisy forward: returns (noisy inputs per layer, noise-or-difference per layer,
        noisy output); the noise is drawn into buffers kept per layer and sample slot (no
        allocation per step).  Up to the first layer with noise the pass is the clean one,
        so those pre-activations are the clean pass's (``cache``), not computed again."""
        x = cache.inputs[0]
        xp = get_array_module(x)
        a = x
        inputs, xis = [], []
        n = len(net.layers)
        clean = True  # no noise added upstream yet
        for l, (layer, act) in enumerate(zip(net.layers, net.activations)):
            inputs.append(a)
            if clean:
                if not layer.params():  # no noise here: the clean activation
                    a = cache.post[l]
                    xis.append(None)
                    continue
                z = cache.pre[l].copy()  # written in place below
                clean = False
            elif is_dense_like(layer):
                z = xp.matmul(a, layer.W.T)
                if layer.b is not None:
                    z += layer.b
            else:  # convolution, pooling, flatten: the same function as the clean pass
                z = layer.forward(a)
                if not layer.params():  # nothing to learn here: no noise on these units
                    a = act.forward(z)
                    xis.append(None)
                    continue
            xi = self._rng.normal(0.0, self.sigma, tuple(z.shape), dtype=z.dtype, xp=xp,
                                  out=self._noise_buffer(slot, l, z))
            # softmax + cross-entropy: the loss reads the logits, so the noise goes there
            a = z if (fused and l == n - 1) else act.forward(z, out=z)
            a += xi
            xis.append(xi)
        return inputs, xis, a

    def _h(self, net, cache, t, loss_fn):
        """Per layer, the averaged :math:`h_l` (unbiased) or, for the tutorial estimator,
        the list over samples of (noisy inputs, coefficient matrices)."""
        fused = _fused(net, loss_fn)
        x = cache.inputs[0]
        xp = get_array_module(x)
        clean = net.output_loss(cache, t, loss_fn, per_sample=True)
        n = len(net.layers)
        inv = 1.0 / self.sigma ** 2
        acc = None
        for k in range(self.n_samples):
            inputs, xis, out = self._noisy_pass(net, cache, fused, slot=min(k, 1))
            dl = per_sample_prepared(loss_fn, out, t) - clean
            dl *= dl.dtype.type(inv)
            if self.estimator == "unbiased":
                terms = xis
                for xi in terms:
                    if xi is not None:  # the noise is not needed afterwards: reuse its buffer
                        xi *= dl.reshape((-1,) + (1,) * (xi.ndim - 1))
                if acc is None:
                    acc = terms
                else:
                    for a_, t_ in zip(acc, terms):
                        if a_ is not None:
                            a_ += t_
            else:
                dl = dl[:, None]
                gs = []
                for l in range(n):
                    if l < n - 1:
                        diff = inputs[l + 1] - cache.post[l]
                    else:
                        ref = cache.pre[l] if fused else cache.post[l]
                        diff = out - ref
                    u = diff * dl
                    u *= u.dtype.type(1.0 / u.shape[0])
                    g = {"W": xp.matmul(u.T, inputs[l])}
                    if net.layers[l].b is not None:
                        g["b"] = xp.sum(u, axis=0)
                    gs.append(g)
                if acc is None:
                    acc = gs
                else:
                    for a_, g_ in zip(acc, gs):
                        for k in a_:
                            a_[k] += g_[k]
        if self.n_samples > 1:
            s = 1.0 / self.n_samples
            for a_ in acc:
                if a_ is None:
                    continue
                if isinstance(a_, dict):
                    for k in a_:
                        a_[k] *= a_[k].dtype.type(s)
                else:
                    a_ *= a_.dtype.type(s)
        return acc, fused

    def _deltas(self, net, cache, acc, fused):
        n = len(net.layers)
        deltas = []
        for l in range(n):
            if acc[l] is None:
                deltas.append(None)
            elif fused and l == n - 1:
                deltas.append(acc[l])
            else:
                deltas.append(net.activations[l].vjp(cache.pre[l], cache.post[l], acc[l]))
        return deltas

    def _check_layers(self, net):
        for l, layer in enumerate(getattr(net, "layers", [])):
            if is_dense_like(layer):
                continue
            if self.estimator == "tutorial":
                raise ValueError(
                    f"NodePerturbation(estimator='tutorial') forms W's update from the noisy "
                    f"activities of dense layers (z = x W^T + b), but layer {l} ({layer!r}) is "
                    "not such a layer; use estimator='unbiased' (it takes convolution, pooling "
                    "and flatten layers) or WeightPerturbation")
            if not getattr(layer, "pure_forward", False):
                raise ValueError(
                    f"NodePerturbation perturbs the units of dense, convolution, pooling and "
                    f"flatten layers, whose noisy pass is the clean pass's function of the "
                    f"parameters plus the noise, but layer {l} ({layer!r}) is not such a layer "
                    "(it may draw its own noise or, like batch norm, use batch statistics and "
                    "update running statistics); use WeightPerturbation or Backprop")

    def gradients(self, net, x, target, loss_fn) -> list:
        self._check_layers(net)
        cache, t = self._prepare(net, x, target, loss_fn)
        acc, fused = self._h(net, cache, t, loss_fn)
        if self.estimator == "tutorial":
            return acc
        xp = get_array_module(cache.inputs[0])
        grads = []
        inv_n = 1.0 / cache.inputs[0].shape[0]
        for l, delta in enumerate(self._deltas(net, cache, acc, fused)):
            layer = net.layers[l]
            if delta is None:
                grads.append({})
                continue
            delta *= delta.dtype.type(inv_n)
            if not is_dense_like(layer):  # e.g. a convolution: its own weight gradient
                grads.append(layer.backward(cache.inputs[l], delta, cache=cache.caches[l],
                                            need_input_grad=False)[0])
                continue
            g = {"W": xp.matmul(delta.T, cache.inputs[l])}
            if layer.b is not None:
                g["b"] = xp.sum(delta, axis=0)
            grads.append(g)
        return grads

    def per_sample_deltas(self, net, x, target, loss_fn):
        self._check_layers(net)
        if not all(is_dense_like(layer) for layer in net.layers):
            return None  # the metrics then take each sample as its own batch
        if self.estimator == "tutorial" and self.n_samples > 1:
            return None
        cache, t = self._prepare(net, x, target, loss_fn)
        if self.estimator == "tutorial":
            return None
        acc, fused = self._h(net, cache, t, loss_fn)
        return cache.inputs, self._deltas(net, cache, acc, fused)

    def get_config(self) -> dict:
        return {"name": self.name, "sigma": self.sigma, "n_samples": self.n_samples,
                "estimator": self.estimator}
