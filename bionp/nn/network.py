r"""Multi-layer perceptron of any depth.

.. math::

    a_{-1} = x, \qquad z_l = a_{l-1} W_l^\top + b_l, \qquad a_l = f_l(z_l),
    \qquad l = 0, \dots, L-1,

with :math:`f_{L-1}` the output activation.  :meth:`MLP.forward_cache`
keeps, per layer, the input :math:`a_{l-1}`, the pre-activation :math:`z_l`
and the activation :math:`a_l` in a :class:`ForwardCache`; that is all the
learning rules in :mod:`bionp.rules` need.

Data layout is ``(batch, features)``; the Microlearning tutorial's
``(features, batch)`` layout with the bias folded into ``W`` corresponds to
``MLP([784, 500, 10], activation="sigmoid", output_activation="sigmoid",
bias_init="normal")``.
"""

from __future__ import annotations

import copy as _copy
import dataclasses

from bionp.backend import check_same_backend, get_array_module, is_array, resolve_dtype
from bionp.nn.activations import get_activation
from bionp.nn.layers import Dense
from bionp.nn.losses import output_delta, output_loss, prepare_target
from bionp.random import check_rng
from bionp.validation import check_finite

__all__ = ["MLP", "ForwardCache"]


@dataclasses.dataclass
class ForwardCache:
    """What a forward pass leaves for the learning rules (lists aligned with the layers).

    Attributes
    ----------
    inputs : list of arrays
        ``inputs[l]`` is the input to layer ``l`` (``inputs[0]`` is ``x`` cast to
        the network's dtype; ``inputs[l] is post[l-1]``).
    pre : list of arrays
        ``pre[l]`` = :math:`z_l`.
    post : list of arrays
        ``post[l]`` = :math:`a_l = f_l(z_l)`; ``post[-1]`` is the output.
    """

    inputs: list
    pre: list
    post: list

    @property
    def output(self):
        return self.post[-1]


class MLP:
    """Multi-layer perceptron ``sizes[0] → sizes[1] → … → sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of int, length >= 2
        Layer widths, input first.
    activation : str, Activation or list, default ``"sigmoid"``
        Hidden activation(s): one for all hidden layers or a list of ``len(sizes) - 2``.
    output_activation : str or Activation, default ``"identity"``
        Use ``"identity"`` (logits) with :class:`~bionp.nn.CrossEntropyLoss`;
        ``"softmax"`` with cross-entropy is also handled (fused gradient on the logits).
    bias : bool, default True
    init : str or callable, default ``"normal"``
    init_scale : float, default 0.1
    bias_init : str, default ``"zeros"``
    rng : int, Generator or None
        Draws the layers' weights in order (``W_0``, ``b_0``, ``W_1``, …).
    dtype : float dtype, default ``bionp.get_dtype()``

    Attributes
    ----------
    layers : list of :class:`~bionp.nn.Dense`
    activations : list of Activation, one per layer (the last is the output activation)
    """

    def __init__(self, sizes, activation="sigmoid", output_activation="identity", bias=True,
                 init="normal", init_scale: float = 0.1, rng=None, dtype=None,
                 bias_init: str = "zeros"):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"sizes must list at least 2 positive layer widths, got {sizes}")
        n_layers = len(sizes) - 1
        if isinstance(activation, (list, tuple)):
            if len(activation) != n_layers - 1:
                raise ValueError(
                    f"activation list must have one entry per hidden layer ({n_layers - 1}), "
                    f"got {len(activation)}"
                )
            hidden = [get_activation(a) for a in activation]
        else:
            get_activation(activation)  # validate the name even without hidden layers
            hidden = [get_activation(activation) for _ in range(n_layers - 1)]
        for a in hidden:
            if not a.elementwise:
                raise ValueError(f"{a.name} can only be the output activation")
        self.sizes = sizes
        self.dtype = resolve_dtype(dtype)
        self.bias = bool(bias)
        self.init = init
        self.init_scale = float(init_scale)
        self.bias_init = bias_init
        self.activations = hidden + [get_activation(output_activation)]
        rng = check_rng(rng)
        self.layers = [
            Dense(sizes[i], sizes[i + 1], bias=bias, init=init, init_scale=init_scale, rng=rng,
                  dtype=self.dtype, bias_init=bias_init)
            for i in range(n_layers)
        ]

    # -- shape -------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def in_features(self) -> int:
        return self.sizes[0]

    @property
    def out_features(self) -> int:
        return self.sizes[-1]

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    @property
    def output_activation(self):
        return self.activations[-1]

    def parameters(self) -> list:
        """List aligned with :attr:`layers` of ``{"W": W, "b": b}`` (the arrays, not copies)."""
        return [layer.params() for layer in self.layers]

    # -- input checks ------------------------------------------------------------------
    def check_input(self, x):
        """Validate ``x`` and return it in the network's dtype.

        Raises ``ValueError`` (not 2-D, wrong width, NaN/Inf, with counts),
        ``TypeError`` (not an array) and ``MixedBackendError`` (``x`` on another
        backend than the weights).
        """
        if not is_array(x):
            raise TypeError(
                f"x must be an array of the active backend with shape (batch, {self.in_features}), "
                f"got {type(x).__name__}; convert it with bionp.asarray(x)"
            )
        check_same_backend(x, self.layers[0].W, names=("x", "the network's weights"))
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = " (flatten images with x.reshape(len(x), -1))" if x.ndim > 2 else ""
            raise ValueError(
                f"x must have shape (batch, {self.in_features}) for this network "
                f"(sizes {self.sizes}); got {tuple(x.shape)}{hint}"
            )
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        check_finite(x, "x", "clean or mask them before calling the network")
        return x

    def prepare_target(self, target, n_samples: int):
        """Validate ``target`` for ``n_samples`` samples; float ``(N, out)`` (labels one-hot)."""
        if is_array(target):
            check_same_backend(target, self.layers[0].W, names=("target", "the network's weights"))
        return prepare_target(target, n_samples, self.out_features, self.dtype)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x):
        """Output :math:`a_{L-1}` for input ``x`` of shape ``(batch, sizes[0])``."""
        x = self.check_input(x)
        return self._forward(x, None)

    __call__ = forward

    def _forward(self, x, params):
        a = x
        for i, (layer, act) in enumerate(zip(self.layers, self.activations)):
            p = layer.params() if params is None else params[i]
            z = get_array_module(a).matmul(a, p["W"].T)
            if "b" in p:
                z += p["b"]
            a = act.forward(z, out=None if act.name == "identity" else z)
        return a

    def forward_with(self, x, params, *, checked=False, cache=False):
        """Forward pass with other parameters ``params`` (list of dicts like :meth:`parameters`).

        Used by perturbation rules; ``checked=True`` skips validating ``x``.
        With ``cache=True`` returns a :class:`ForwardCache`.
        """
        if not checked:
            x = self.check_input(x)
        if cache:
            return self._forward_cache(x, params)
        return self._forward(x, params)

    def forward_cache(self, x):
        """Forward pass keeping inputs, pre-activations and activations (:class:`ForwardCache`)."""
        x = self.check_input(x)
        return self._forward_cache(x, None)

    def _forward_cache(self, x, params):
        inputs, pre, post = [], [], []
        a = x
        for i, (layer, act) in enumerate(zip(self.layers, self.activations)):
            p = layer.params() if params is None else params[i]
            inputs.append(a)
            z = get_array_module(a).matmul(a, p["W"].T)
            if "b" in p:
                z += p["b"]
            a = act.forward(z)
            pre.append(z)
            post.append(a)
        return ForwardCache(inputs, pre, post)

    def predict(self, x):
        """Predicted class indices ``argmax`` of the output."""
        out = self.forward(x)
        return get_array_module(out).argmax(out, axis=1)

    # -- loss --------------------------------------------------------------------------------
    def loss(self, x, target, loss_fn):
        """Batch-mean loss of the network on ``(x, target)`` (0-d array).

        With a softmax output and cross-entropy the loss is evaluated on the logits.
        """
        cache = self.forward_cache(x)
        t = self.prepare_target(target, cache.output.shape[0])
        return output_loss(loss_fn, self.activations[-1], cache.pre[-1], cache.post[-1], t)

    def output_loss(self, cache, target, loss_fn, per_sample=False):
        """Loss from a :class:`ForwardCache` and a prepared target."""
        return output_loss(loss_fn, self.activations[-1], cache.pre[-1], cache.post[-1], target,
                           per_sample=per_sample)

    def output_delta(self, cache, target, loss_fn):
        r""":math:`\partial L/\partial z_{L-1}` from a cache and a prepared target."""
        return output_delta(loss_fn, self.activations[-1], cache.pre[-1], cache.post[-1], target)

    # -- config / copies / state -----------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "sizes": list(self.sizes),
            "activation": [a.get_config() for a in self.activations[:-1]],
            "output_activation": self.activations[-1].get_config(),
            "bias": self.bias,
            "init": self.init if isinstance(self.init, str) else "custom",
            "init_scale": self.init_scale,
            "bias_init": self.bias_init,
            "dtype": self.dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict, rng=None) -> "MLP":
        cfg = dict(config)
        acts = cfg.pop("activation")
        if isinstance(acts, list) and len(acts) == len(cfg["sizes"]) - 2:
            cfg["activation"] = acts
        else:
            cfg["activation"] = acts if not isinstance(acts, list) else "identity"
        return cls(**cfg, rng=rng)

    def copy(self) -> "MLP":
        """Deep copy (new arrays, same backend)."""
        return _copy.deepcopy(self)

    def __deepcopy__(self, memo):
        new = object.__new__(type(self))
        for k, v in self.__dict__.items():
            new.__dict__[k] = _copy.deepcopy(v, memo) if k != "layers" else None
        new.layers = []
        for layer in self.layers:
            nl = object.__new__(Dense)
            nl.__dict__.update(layer.__dict__)
            nl.W = layer.W.copy()
            nl.b = None if layer.b is None else layer.b.copy()
            new.layers.append(nl)
        return new

    def state_dict(self) -> dict:
        """``{"layers.{l}.W": W, "layers.{l}.b": b, …}`` (the arrays themselves)."""
        out = {}
        for i, layer in enumerate(self.layers):
            for k, v in layer.params().items():
                out[f"layers.{i}.{k}"] = v
        return out

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the existing parameters **in place** (optimisers keep references)."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise ValueError(
                f"state does not match this network: missing {missing}, unexpected {extra}")
        for k, v in own.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise ValueError(
                    f"{k}: expected shape {tuple(v.shape)}, got {tuple(state[k].shape)}")
            xp = get_array_module(v)
            v[...] = xp.asarray(state[k], dtype=v.dtype) if is_array(state[k]) else state[k]

    def __repr__(self) -> str:
        acts = ", ".join(a.name for a in self.activations)
        return f"MLP(sizes={self.sizes}, activations=[{acts}], bias={self.bias})"
