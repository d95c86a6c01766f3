r"""Networks: a stack of layers with activations between them.

.. math::

    a_{-1} = x, \qquad z_l = \mathrm{layer}_l(a_{l-1}), \qquad a_l = f_l(z_l),
    \qquad l = 0, \dots, L-1,

with :math:`f_{L-1}` the output activation.  For a :class:`~bionp.nn.Dense`
layer :math:`z_l = a_{l-1} W_l^\top + b_l`, which makes :class:`MLP` the
familiar multi-layer perceptron; :class:`Sequential` takes any layers that
follow the layer protocol below (dense, dendritic, noisy, …).

:meth:`Sequential.forward_cache` (the *training* forward pass) keeps, per
layer, the input :math:`a_{l-1}`, the pre-activation :math:`z_l`, the
activation :math:`a_l` and the layer's own backward cache in a
:class:`ForwardCache`; that is all the learning rules in :mod:`bionp.rules`
need.  :meth:`Sequential.forward` is the *evaluation* pass (no noise unless a
layer was asked for evaluation noise, nothing kept).

Layer protocol
--------------
``params()`` (the trainable arrays themselves, in a dict: ``{"W", "b"}`` for a dense
layer, ``{}`` for a parameter-free layer such as pooling or :class:`~bionp.nn.Flatten`);
``n_params``; ``dtype`` (None for parameter-free layers); ``forward(x, params=None)``;
``forward_cache(x, params=None) -> (z, cache)``; ``backward(x, delta, cache=None,
feedback=None, need_input_grad=True) -> (grads, delta_in)`` with ``delta`` =
:math:`\partial L/\partial z` (the batch-mean :math:`1/N` inside) and ``grads`` keyed
like ``params()``.

Shapes are per sample.  A layer either has ``output_shape_for(input_shape)`` (returns
its per-sample output shape, or raises ``ValueError`` saying why the input does not fit;
no state changes) and ``build(input_shape)`` (the same, then records ``input_shape`` /
``output_shape``: the network calls it once every layer has been checked), or it is a
flat layer with ``in_features``/``out_features`` (input ``(in_features,)``, output
``(out_features,)``).  Images are NCHW: per-sample ``(C, H, W)``.
Optional: ``state_dict()``/``load_state_dict()`` for state that is not a
parameter (saved in :class:`~bionp.train.Trainer` checkpoints) and
``after_update()`` (called after every optimiser step through
:meth:`Sequential.after_update`).

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
from bionp.nn.shapes import layer_shapes, prod
from bionp.random import check_rng
from bionp.validation import check_finite, check_float_dtype, check_real, data_already_checked

__all__ = ["Sequential", "MLP", "ForwardCache"]

_LAYER_METHODS = ("params", "forward", "forward_cache", "backward")


@dataclasses.dataclass
class ForwardCache:
    """What a training forward pass leaves for the learning rules (lists aligned with the layers).

    Parameters
    ----------
    inputs : list of arrays
        ``inputs[l]`` is the input to layer ``l`` (``inputs[0]`` is ``x`` cast to
        the network's dtype; ``inputs[l] is post[l-1]``).
    pre : list of arrays
        ``pre[l]`` = :math:`z_l`.
    post : list of arrays
        ``post[l]`` = :math:`a_l = f_l(z_l)`; ``post[-1]`` is the output.
    caches : list
        ``caches[l]`` is what layer ``l``'s ``backward`` needs from this pass (the
        noise it drew, dendrite activations), or None.
    """

    inputs: list
    pre: list
    post: list
    caches: list = dataclasses.field(default_factory=list)

    @property
    def output(self):
        return self.post[-1]


def is_dense_like(layer) -> bool:
    """True for layers computing ``x @ W.T + b`` with exactly the parameters ``W`` (and ``b``)
    and no state between the forward and the backward pass (what node perturbation and the
    per-sample gradient moments assume).

    Parameters
    ----------
    layer : layer object
    """
    keys = set(layer.params())
    return getattr(layer, "dense_like", False) and keys in ({"W"}, {"W", "b"})


def _checked_activations(activations) -> list:
    """Activation objects for the names/objects given, one per layer; only the last (the
    output activation) may be one that is not elementwise (softmax)."""
    acts = [get_activation(a) for a in activations]
    for a in acts[:-1]:
        if not a.elementwise:
            raise ValueError(f"{a.name} can only be the output activation")
    return acts


class Sequential:
    """Layers ``layers[0] → … → layers[-1]`` with an activation after each.

    Parameters
    ----------
    layers : sequence of layers
        Objects following the layer protocol (module docstring): :class:`~bionp.nn.Dense`,
        :class:`~bionp.dendritic.DendriticLayer`, the noisy layers, the image layers
        (:class:`~bionp.nn.Conv2d`, pooling, :class:`~bionp.nn.Flatten`, batch norm); each
        layer must take the previous one's per-sample output shape (a dense layer's
        ``in_features`` its ``out_features``), and the last must give a flat output.
    activations : sequence of str or Activation, optional
        One per layer, the last being the output activation; default ``"identity"``
        everywhere.  Hidden activations must be elementwise (they act on images too);
        give ``"identity"`` after layers that need none (pooling, flatten).
    input_shape : tuple of int, optional
        Per-sample input shape, e.g. ``(1, 32, 32)`` for images (NCHW).  Needed when the
        first layer does not fix it (a convolution); default ``(layers[0].in_features,)``.

    Attributes
    ----------
    layers : list
    activations : list of Activation, one per layer (the last is the output activation)
    shapes : list of tuple
        Per-sample shapes ``[input, out_0, out_1, …]``.
    dtype : the layers' common float dtype
    """

    def __init__(self, layers, activations=None, input_shape=None):
        layers = list(layers)
        if not layers:
            raise ValueError("a Sequential network needs at least one layer")
        for i, layer in enumerate(layers):
            missing = [m for m in _LAYER_METHODS if not callable(getattr(layer, m, None))]
            shaped = callable(getattr(layer, "output_shape_for", None))
            if missing or not (shaped or (hasattr(layer, "in_features")
                                          and hasattr(layer, "out_features"))):
                raise TypeError(
                    f"layer {i} ({type(layer).__name__}) does not follow bionp's layer protocol: "
                    f"it lacks {missing or ['output_shape_for or in_features/out_features']} "
                    "(see bionp.nn.network)")
        shapes = layer_shapes(layers, input_shape)
        dtypes = {resolve_dtype(layer.dtype) for layer in layers
                  if getattr(layer, "dtype", None) is not None}
        if len(dtypes) > 1:
            raise ValueError(f"all layers must have the same dtype, got {sorted(d.name for d in dtypes)}")
        if activations is None:
            activations = ["identity"] * len(layers)
        activations = list(activations)
        if len(activations) != len(layers):
            raise ValueError(f"activations must have one entry per layer ({len(layers)}), "
                             f"got {len(activations)}")
        acts = _checked_activations(activations)
        for layer, shape in zip(layers, shapes):  # every check passed: record the shapes
            build = getattr(layer, "build", None)
            if callable(build):
                build(shape)
        self.layers = layers
        self.activations = acts
        self.shapes = shapes
        self.dtype = dtypes.pop() if dtypes else resolve_dtype(None)

    # -- shape -------------------------------------------------------------------------
    @property
    def sizes(self) -> list:
        """Widths ``[in_features, out_0, out_1, …]`` (each per-sample shape's size)."""
        return [prod(s) for s in self.shapes]

    @property
    def input_shape(self) -> tuple:
        """Per-sample input shape: ``(in_features,)`` or an image's ``(C, H, W)``."""
        return self.shapes[0]

    @property
    def output_shape(self) -> tuple:
        """Per-sample output shape ``(out_features,)``."""
        return self.shapes[-1]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def in_features(self) -> int:
        return prod(self.shapes[0])

    @property
    def out_features(self) -> int:
        return self.shapes[-1][0]

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    @property
    def output_activation(self):
        return self.activations[-1]

    def parameters(self) -> list:
        """List aligned with :attr:`layers` of each layer's ``params()`` (the arrays, not copies)."""
        return [layer.params() for layer in self.layers]

    def _reference_array(self):
        """The first parameter array (None for a network without parameters)."""
        for layer in self.layers:
            for v in layer.params().values():
                return v
        return None

    # -- input checks ------------------------------------------------------------------
    def check_input(self, x):
        """Validate ``x`` and return it in the network's dtype.

        ``x`` has shape ``(batch, *input_shape)``; for a network of images, flat rows
        ``(batch, C*H*W)`` (what :func:`bionp.data.load` gives) are also taken and reshaped
        (a view).  Raises ``ValueError`` (wrong rank or shape, NaN/Inf, with counts),
        ``TypeError`` (not an array) and ``MixedBackendError`` (``x`` on another backend
        than the weights).
        """
        if not is_array(x):
            want = "(batch, " + ", ".join(str(s) for s in self.input_shape) + ")"
            raise TypeError(
                f"x must be an array of the active backend with shape {want}, "
                f"got {type(x).__name__}; convert it with bionp.asarray(x)"
            )
        ref = self._reference_array()
        if ref is not None:
            check_same_backend(x, ref, names=("x", "the network's weights"))
        if x.dtype.kind != "f":
            check_float_dtype(x, "x")
        shape = tuple(x.shape)
        if x.ndim >= 1 and shape[0] == 0:
            raise ValueError(f"x is empty (0 samples, shape {shape}); pass at least one sample")
        input_shape = self.shapes[0]
        if shape[1:] == input_shape:
            pass
        elif len(input_shape) > 1 and x.ndim == 2 and shape[1] == self.in_features:
            x = x.reshape((shape[0],) + input_shape)
        else:
            want = "(batch, " + ", ".join(str(s) for s in self.input_shape) + ")"
            if len(self.input_shape) == 1:
                hint = " (flatten images with x.reshape(len(x), -1))" if x.ndim > 2 else ""
                raise ValueError(
                    f"x must have shape {want} for this network "
                    f"(sizes {self.sizes}); got {shape}{hint}"
                )
            raise ValueError(
                f"x must have shape {want} (or flat rows (batch, {self.in_features})) for this "
                f"network; got {shape}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if not data_already_checked():  # the Trainer checks its data once per fit
            check_finite(x, "x", "clean or mask them before calling the network")
        return x

    def prepare_target(self, target, n_samples: int):
        """Validate ``target`` for ``n_samples`` samples; float ``(N, out)`` (labels one-hot)."""
        ref = self._reference_array()
        if is_array(target) and ref is not None:
            check_same_backend(target, ref, names=("target", "the network's weights"))
        return prepare_target(target, n_samples, self.out_features, self.dtype)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x):
        """Evaluation output :math:`a_{L-1}` for input ``x`` of shape ``(batch, *input_shape)``."""
        x = self.check_input(x)
        return self._forward(x, None)

    __call__ = forward

    def _forward(self, x, params):
        a = x
        for i, (layer, act) in enumerate(zip(self.layers, self.activations)):
            z = layer.forward(a) if params is None else layer.forward(a, params=params[i])
            a = act.forward(z, out=None if act.name == "identity" else z)
        return a

    def forward_with(self, x, params, *, checked=False, cache=False):
        """Forward pass with other parameters ``params`` (list of dicts like :meth:`parameters`).

        Used by perturbation rules; ``checked=True`` skips validating ``x``.
        With ``cache=True`` returns a :class:`ForwardCache` (a training pass).
        """
        if not checked:
            x = self.check_input(x)
        if cache:
            return self._forward_cache(x, params)
        return self._forward(x, params)

    def forward_cache(self, x):
        """Training forward pass keeping inputs, pre-activations, activations and the layers'
        backward caches (:class:`ForwardCache`)."""
        x = self.check_input(x)
        return self._forward_cache(x, None)

    def _forward_cache(self, x, params):
        inputs, pre, post, caches = [], [], [], []
        a = x
        for i, (layer, act) in enumerate(zip(self.layers, self.activations)):
            inputs.append(a)
            if params is None:
                z, c = layer.forward_cache(a)
            else:
                z, c = layer.forward_cache(a, params=params[i])
            a = act.forward(z)
            pre.append(z)
            post.append(a)
            caches.append(c)
        return ForwardCache(inputs, pre, post, caches)

    def predict(self, x):
        """Predicted class indices ``argmax`` of the output."""
        out = self.forward(x)
        return get_array_module(out).argmax(out, axis=1)

    # -- loss --------------------------------------------------------------------------------
    def loss(self, x, target, loss_fn):
        """Batch-mean loss of the network on ``(x, target)`` (0-d array, training pass).

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

    # -- hooks -------------------------------------------------------------------------------
    def after_update(self) -> None:
        """Call ``after_update()`` on every layer that has one (the Trainer does this after
        every optimiser step: synaptic resampling, clamps, sign constraints)."""
        for layer in self.layers:
            hook = getattr(layer, "after_update", None)
            if hook is not None:
                hook()

    # -- config / copies / state -----------------------------------------------------------
    def get_config(self) -> dict:
        """Description of the layers and activations (for results files)."""
        return {
            "layers": [{"type": type(layer).__name__,
                        **(layer.get_config() if hasattr(layer, "get_config") else {})}
                       for layer in self.layers],
            "activations": [a.get_config() for a in self.activations],
            "input_shape": list(self.input_shape),
        }

    def copy(self):
        """Deep copy (new arrays on the same backend, independent generators)."""
        return _copy.deepcopy(self)

    def state_dict(self) -> dict:
        """``{"layers.{l}.{name}": array, …}`` for every parameter (the arrays themselves)."""
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
        parts = ", ".join(f"{layer!r} -> {act.name}"
                          for layer, act in zip(self.layers, self.activations))
        return f"Sequential([{parts}])"


class MLP(Sequential):
    """Multi-layer perceptron ``sizes[0] → sizes[1] → … → sizes[-1]`` of :class:`~bionp.nn.Dense`
    layers.

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

    Examples
    --------
    >>> import numpy as np
    >>> net = MLP([784, 256, 10], activation="relu", init="he_normal", rng=0)
    >>> [layer.W.shape for layer in net.layers]
    [(256, 784), (10, 256)]
    >>> net.forward(np.zeros((3, 784), dtype=np.float32)).shape
    (3, 10)
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
            hidden = list(activation)
        else:
            get_activation(activation)  # validate the name even without hidden layers
            hidden = [activation] * (n_layers - 1)
        acts = _checked_activations(hidden + [output_activation])  # before drawing any weight
        dtype = resolve_dtype(dtype)
        self.bias = bool(bias)
        self.init = init
        self.init_scale = check_real("init_scale", init_scale, low=0)
        self.bias_init = bias_init
        rng = check_rng(rng)
        layers = [
            Dense(sizes[i], sizes[i + 1], bias=bias, init=init, init_scale=init_scale, rng=rng,
                  dtype=dtype, bias_init=bias_init)
            for i in range(n_layers)
        ]
        super().__init__(layers, acts)

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

    def __repr__(self) -> str:
        acts = ", ".join(a.name for a in self.activations)
        return f"MLP(sizes={self.sizes}, activations=[{acts}], bias={self.bias})"
