r"""The interface every supervised learning rule implements.

Sign and scale convention
-------------------------
``rule.gradients(net, x, target, loss_fn)`` returns a list aligned with
``net.layers`` of ``{"W": g_W, "b": g_b}`` (``"b"`` only for layers with a
bias): the rule's **estimate of** :math:`\partial L/\partial\theta`, where
:math:`L = \frac1N\sum_n \ell_n` is the **batch-mean** loss.  An optimiser
descends: :math:`\theta \leftarrow \theta - \mathrm{lr}\, g`.

Relation to the Microlearning tutorial
--------------------------------------
The tutorial stores data as ``(features, batch)``, folds the bias into ``W``,
uses :math:`L = \frac1N\sum_n\sum_k (y_{nk} - t_{nk})^2` (bionp's
:class:`~bionp.nn.MSELoss`) and updates :math:`W \leftarrow W + \eta\,\Delta W`.
Its :math:`\Delta W` is

* for backprop, feedback alignment and Kolen–Pollack, the batch **sum**
  :math:`\sum_n e_n \ldots` with :math:`e = t - y` and no factor 2, i.e.
  :math:`\Delta W = -\frac N2\,\partial L/\partial W`; so tutorial
  :math:`\eta` ≡ bionp ``lr = η·N/2`` (η = 1e-3, N = 200 → lr = 0.1);
* for weight and node perturbation, the estimate of the **batch-mean**
  gradient with the descent sign, :math:`\Delta W = -\hat g`; so tutorial
  :math:`\eta` ≡ bionp ``lr = η`` (lr = 1e-3).

After the optimiser step, call ``rule.after_step(net, optimizer)`` (or
``rule.update_after_step(net, grads, lr)``, which Kolen–Pollack's default
``feedback_optimizer="mirror"`` refuses: it needs the optimiser): rules with learned
feedback (Kolen–Pollack) update it there; for the others it does nothing.
"""

from __future__ import annotations

from bionp.backend import get_array_module, is_array
from bionp.nn.network import is_dense_like

__all__ = ["Rule"]


class Rule:
    """Base class of the supervised learning rules.

    Attributes
    ----------
    last_loss : 0-d array or None
        Batch-mean loss of the clean forward pass of the last :meth:`gradients` call
        (before the update), for logging without another forward pass.
    """

    name = "rule"
    last_loss = None

    def gradients(self, net, x, target, loss_fn) -> list:  # pragma: no cover - abstract
        """Estimate of ∂L/∂θ per layer: list of ``{"W": ..., "b": ...}`` (batch-mean loss)."""
        raise NotImplementedError

    def regularization(self, net):
        r"""Per-layer terms that :meth:`gradients` adds to the error-driven estimate.

        A list aligned with ``net.layers`` of ``{"W": ..., "b": ...}`` (``None`` for a layer
        without such a term), or ``None`` when the rule adds nothing (the default).  For
        Kolen-Pollack it is the weight decay :math:`\lambda\theta_l` of layers ``l >= 1``:
        ``gradients() == error_gradients() + regularization()``.
        """
        return None

    def error_gradients(self, net, x, target, loss_fn) -> list:
        r"""The error-driven part of :meth:`gradients`: the estimate of
        :math:`\partial L/\partial\theta` without :meth:`regularization`.

        What the diagnostics of :mod:`bionp.metrics` compare with backprop by default.
        This default subtracts :meth:`regularization` from :meth:`gradients`; rules with a
        regularisation term override it to return the error-driven part directly.
        """
        grads = self.gradients(net, x, target, loss_fn)
        reg = self.regularization(net)
        if reg is None:
            return grads
        return [g if r is None else {k: v - r[k] if k in r else v for k, v in g.items()}
                for g, r in zip(grads, reg)]

    def update_after_step(self, net, grads, lr) -> None:
        """Hook called after the optimiser applied ``grads`` with learning rate ``lr``."""

    def after_step(self, net, optimizer) -> None:
        """Same hook, given the optimiser: ``update_after_step(net, None, optimizer.lr)``."""
        self.update_after_step(net, None, getattr(optimizer, "lr", None))

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Learned/random state for checkpoints: the generator state and feedback matrices
        (arrays, lists of arrays/None and JSON-able values only)."""
        out = {}
        rng = getattr(self, "_rng", None)
        if rng is not None:
            out["rng"] = rng.get_state()
        for name in ("B", "D"):
            if hasattr(self, name):
                out[name] = getattr(self, name)
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (arrays are used as given: move them to the backend)."""
        if "rng" in state and getattr(self, "_rng", None) is not None:
            self._rng.set_state(state["rng"])
        for name in ("B", "D"):
            if name in state and hasattr(self, name):
                value = state[name]
                setattr(self, name, None if value is None else list(value))

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({params})"

    # -- shared helpers -------------------------------------------------------------------
    @staticmethod
    def _check_net(net):
        if not hasattr(net, "layers") or not hasattr(net, "forward_cache"):
            raise TypeError(f"net must be a bionp.nn.Sequential or MLP (or expose .layers and "
                            f".forward_cache), "
                            f"got {type(net).__name__}")

    def _prepare(self, net, x, target, loss_fn, *, net_checked=False):
        """Validate; return ``(cache, target)`` with ``target`` a float ``(N, out)`` array
        (``net_checked``: the caller has just made :meth:`_check_net`'s check)."""
        x, t = self._checked(net, x, target, loss_fn, net_checked=net_checked)
        cache = net.forward_with(x, None, checked=True, cache=True)
        # the clean batch loss (0-d array), so that a training loop needs no extra forward pass
        self.last_loss = net.output_loss(cache, t, loss_fn)
        return cache, t

    def _checked(self, net, x, target, loss_fn, *, net_checked=False):
        """Validate everything before any pass; return the checked ``x`` and ``target`` as a
        float ``(N, out)`` array."""
        if not net_checked:
            self._check_net(net)
        if not hasattr(loss_fn, "per_sample") or not hasattr(loss_fn, "grad"):
            raise TypeError(
                f"loss_fn must be a bionp.nn loss (MSELoss(), CrossEntropyLoss()), got "
                f"{type(loss_fn).__name__}; bionp.nn.get_loss('mse') builds one from a name"
            )
        if is_array(x) and is_array(target) and getattr(x, "ndim", 0) >= 1 \
                and getattr(target, "ndim", 0) >= 1 and x.shape[0] != target.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but target has {target.shape[0]}; "
                             "they must have the same first dimension")
        x = net.check_input(x)
        return x, net.prepare_target(target, x.shape[0])

    @staticmethod
    def _backward(net, cache, delta, feedback=None, direct=None, grads=True):
        r"""Backward sweep from the output delta.

        ``feedback[l]`` replaces ``W[l]`` when sending the delta of layer ``l`` to
        layer ``l-1`` (FA/KP; None where the layer's own backward is used: layers without
        weights, batch norm).  ``direct[l]`` (DFA) sends the *output* delta straight to
        hidden layer ``l``: :math:`\delta_l = f'(z_l) \odot (e D_l)`, reshaped to the
        layer's output shape (or, ``D_l`` with one column per channel of a
        ``(C, H, W)`` map, broadcast over ``H x W``).  A ``direct[k]`` on a layer without
        parameters (DFA's ``at="next_input"``) delivers the signal to that layer's output
        instead, and the exact backward of the parameter-free layers down to the layer with
        parameters below them carries it there (max-pooling routes it to the maxima).
        Layers that neither get a ``direct`` entry nor pass one down get no delta at all.
        Each layer's ``backward`` gets the cache of its own forward pass
        (``cache.caches[l]``: e.g. the weight noise it drew).  No delta is sent below the
        last layer (from the input) that has parameters.
        Returns the per-layer gradients, or with ``grads=False`` the per-layer
        deltas :math:`\delta_l` (what :mod:`bionp.metrics` needs for per-sample moments;
        dense-like layers only).
        """
        layers = net.layers
        n = len(layers)
        out = [None] * n
        layer_caches = getattr(cache, "caches", None) or [None] * n
        # lowest layer that has parameters: nothing needs a delta below it
        lowest = 0 if layers[0].params() else next(
            (l for l, layer in enumerate(layers) if layer.params()), n)
        delta_out = delta
        # DFA, signal delivered above parameter-free layers: they pass it down exactly
        through = [False] * n
        for k, D in enumerate(direct or ()):
            while D is not None and k >= 0 and not layers[k].params():
                through[k] = True
                k -= 1
        for l in range(n - 1, -1, -1):
            layer = layers[l]
            need = l > lowest and (direct is None or through[l])
            M = None if feedback is None else feedback[l]
            d_in = None
            if delta is None:  # DFA: a layer without parameters gets no signal
                out[l] = {}
            elif grads:
                out[l], d_in = layer.backward(cache.inputs[l], delta, cache=layer_caches[l],
                                              feedback=M, need_input_grad=need)
            else:
                out[l] = delta
                if need:
                    d_in = get_array_module(delta).matmul(delta, layer.W if M is None else M)
            if l > 0:
                D = None if direct is None else direct[l - 1]
                if D is not None and l - 1 >= lowest:  # DFA: the output delta, sent here
                    xp = get_array_module(delta_out)
                    d_in = xp.matmul(delta_out, D)
                    shape = cache.pre[l - 1].shape
                    if d_in.shape[1] == shape[1] and len(shape) == 4:  # one column per channel
                        d_in = xp.ascontiguousarray(
                            xp.broadcast_to(d_in.reshape(shape[:2] + (1, 1)), shape))
                    else:
                        d_in = d_in.reshape(shape)
                elif not need:
                    delta = None
                    continue
                act = net.activations[l - 1]
                delta = act.vjp(cache.pre[l - 1], cache.post[l - 1], d_in)
        for l in range(n):
            if out[l] is None:
                out[l] = {}
        return out

    # -- per-sample gradients (for the gradient SNR in bionp.metrics) -----------------------
    def _draws_pending(self) -> bool:
        """True while the rule's random feedback is still to be drawn (at the next call)."""
        return False

    def per_sample_deltas(self, net, x, target, loss_fn):
        """``(inputs, deltas)`` such that the rule's gradient for sample ``n`` *alone*
        (a batch of one) is ``W: outer(deltas[l][n], inputs[l][n])``, ``b: deltas[l][n]``,
        plus :meth:`per_sample_offsets`.  ``None`` where a rule's per-sample estimate is not
        of this form (the metrics then loop over samples)."""
        return None

    def per_sample_offsets(self, net):
        """Constant terms added to every per-sample gradient (e.g. weight decay), or None:
        :meth:`regularization`."""
        return self.regularization(net)


class ErrorPropagationRule(Rule):
    """Rules that send the output error down through matrices: backprop (``W``),
    feedback alignment (``B``), direct feedback alignment (``D``).  Subclasses say
    which matrices with :meth:`_propagation`."""

    def _propagation(self, net) -> dict:
        """Keyword arguments of :meth:`_backward`: ``{}`` (backprop), ``{"feedback": B}``
        or ``{"direct": D}``."""
        return {}

    def _diagnostic_propagation(self, net) -> dict:
        """What the diagnostics (:meth:`per_sample_deltas`) propagate with: by default
        :meth:`_propagation`; rules that draw feedback every update (brSF) return the draw
        the next update would use without advancing their generator."""
        return self._propagation(net)

    def gradients(self, net, x, target, loss_fn) -> list:
        self._check_net(net)
        if self._draws_pending():  # x and target checked before the first draw of feedback
            net.prepare_target(target, net.check_input(x).shape[0])
        # feedback matrices first: a network the rule cannot train is refused before the
        # training pass moves any state (batch norm's running statistics)
        propagation = self._propagation(net)
        cache, t = self._prepare(net, x, target, loss_fn, net_checked=True)
        delta = net.output_delta(cache, t, loss_fn)
        return self._backward(net, cache, delta, **propagation)

    def per_sample_deltas(self, net, x, target, loss_fn):
        if not all(is_dense_like(layer) for layer in net.layers):
            return None  # the metrics then take each sample as its own batch
        cache, t = self._prepare(net, x, target, loss_fn)
        delta = net.output_delta(cache, t, loss_fn)
        delta *= delta.dtype.type(delta.shape[0])  # undo the 1/N: each sample its own batch
        return cache.inputs, self._backward(net, cache, delta, grads=False,
                                            **self._diagnostic_propagation(net))
