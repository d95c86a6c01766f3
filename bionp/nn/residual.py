r"""The basic residual block of He et al. (2016), CIFAR variant: two 3x3 convolutions with
batch norm, plus a shortcut.

.. math::

    u = f\big(\mathrm{BN}_1(W_1 * x)\big), \qquad
    z = \mathrm{BN}_2(W_2 * u) + S(x),

with :math:`W_1` of stride :math:`s` (padding 1), :math:`W_2` of stride 1 (padding 1),
no convolution biases (batch norm has them), :math:`f` the inner activation (ReLU).  The
activation after the sum is the network's activation of this layer (``"relu"`` in a
ResNet).  The shortcut :math:`S` is the identity when the shape is kept; otherwise

* option **A** (parameter-free, He et al.'s CIFAR choice): take every :math:`s`-th pixel,
  :math:`x_{n,c,si,sj}`, and pad the channels with zeros (half before, half after);
* option **B**: a 1x1 convolution of stride :math:`s` followed by batch norm.

**Backward.**  Given :math:`\delta = \partial L/\partial z`, the main path is walked back
through :math:`\mathrm{BN}_2`, :math:`W_2`, :math:`f'`, :math:`\mathrm{BN}_1`,
:math:`W_1` (each layer's own backward, :mod:`bionp.nn.conv`, :mod:`bionp.nn.batchnorm`)
and the shortcut's gradient is added: :math:`\partial L/\partial x = \partial_{\text{main}}
+ S^\top\delta` (option A: :math:`\delta`'s kept channels scattered back onto every
:math:`s`-th pixel).  The block is one layer of the network: its parameters are keyed
``"conv1.W"``, ``"bn1.gamma"``, …; the rules that replace weights by feedback matrices
(feedback alignment, Kolen-Pollack, sign symmetry) give one per convolution
(:meth:`ResidualBlock.feedback_weights`), passed to ``backward(feedback={"conv1.W": B_1,
…})``: each convolution's input gradient uses its :math:`B` in place of :math:`W`, and
batch norm, :math:`f'` and the shortcut keep their exact backward.
"""

from __future__ import annotations

from bionp.backend import get_array_module
from bionp.nn.activations import get_activation
from bionp.nn.batchnorm import BatchNorm2d
from bionp.nn.conv import Conv2d
from bionp.nn.protocol import ShapedFeatures
from bionp.random import check_rng
from bionp.validation import check_number, check_real, check_state_shapes

__all__ = ["ResidualBlock"]


class ResidualBlock(ShapedFeatures):
    """Basic residual block (module docstring).

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int, default 1
        Stride of the first convolution (2 halves the image).
    shortcut : {"A", "B"}, default ``"A"``
        How the shortcut changes shape when the block does (module docstring).
    activation : str, default ``"relu"``
        Between the two convolutions (elementwise).
    init : str, default ``"he_normal"``
    bn_momentum : float, default 0.1
    rng : int, Generator or None
    dtype : float dtype
    """

    dense_like = False
    #: several weights inside: rules with feedback matrices give a dict, one per weight
    #: (:meth:`feedback_weights`)
    composite = True
    #: batch norm inside: the training pass uses batch statistics and updates running ones
    stateful_training = True

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut="A",
                 activation="relu", init="he_normal", bn_momentum: float = 0.1, rng=None,
                 dtype=None):
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (subsample + zero channels) or 'B' (1x1 "
                             f"convolution + batch norm), got {shortcut!r}")
        act = get_activation(activation)
        if not act.elementwise:
            raise ValueError(f"the inner activation must be elementwise, got {act.name}")
        # everything checked before the first weight is drawn from ``rng``
        check_real("bn_momentum", bn_momentum, low=0, high=1)
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("stride", stride)):
            check_number(name, v, low=1, integer=True)
        if shortcut == "A" and (stride != 1 or in_channels != out_channels) and (
                out_channels < in_channels or (out_channels - in_channels) % 2):
            raise ValueError(f"option A pads the channels evenly: out_channels ({out_channels}) "
                             f"must exceed in_channels ({in_channels}) by an even number; use "
                             "shortcut='B'")
        rng = check_rng(rng)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False,
                            init=init, rng=rng, dtype=dtype)
        self.bn1 = BatchNorm2d(out_channels, momentum=bn_momentum, dtype=dtype)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False, init=init,
                            rng=rng, dtype=dtype)
        self.bn2 = BatchNorm2d(out_channels, momentum=bn_momentum, dtype=dtype)
        self.activation = act
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.stride = self.conv1.stride[0]
        if self.conv1.stride[0] != self.conv1.stride[1]:
            raise ValueError(f"stride must be one int, got {stride!r}")
        self.shortcut = shortcut
        self.projects = self.stride != 1 or self.in_channels != self.out_channels
        if shortcut == "A" and self.projects and (out_channels < in_channels
                                                   or (out_channels - in_channels) % 2):
            raise ValueError(f"option A pads the channels evenly: out_channels ({out_channels}) "
                             f"must exceed in_channels ({in_channels}) by an even number; use "
                             "shortcut='B'")
        self.short = self.short_bn = None
        if shortcut == "B" and self.projects:
            self.short = Conv2d(in_channels, out_channels, 1, stride=stride, bias=False,
                                init=init, rng=rng, dtype=dtype)
            self.short_bn = BatchNorm2d(out_channels, momentum=bn_momentum, dtype=dtype)
        self.dtype = self.conv1.dtype
        self.input_shape = self.output_shape = None

    # -- structure -------------------------------------------------------------------------
    def _parts(self) -> list:
        parts = [("conv1", self.conv1), ("bn1", self.bn1), ("conv2", self.conv2),
                 ("bn2", self.bn2)]
        if self.short is not None:
            parts += [("short", self.short), ("short_bn", self.short_bn)]
        return parts

    def params(self) -> dict:
        """``{"conv1.W", "bn1.gamma", "bn1.beta", "conv2.W", …}`` (the arrays themselves)."""
        return {f"{name}.{k}": v for name, part in self._parts() for k, v in part.params().items()}

    def feedback_weights(self) -> dict:
        """The convolution kernels a feedback matrix stands in for: ``{"conv1.W": …,
        "conv2.W": …}`` (and ``"short.W"`` with option B's projection)."""
        return {f"{name}.W": part.W for name, part in self._parts() if isinstance(part, Conv2d)}

    def feedback_inputs(self, input_shape) -> dict:
        """Each convolution of :meth:`feedback_weights` with its per-sample input shape,
        ``{"conv1.W": (conv1, input_shape), "conv2.W": (conv2, output shape), …}``: what a
        rule that probes each weight on its own (weight mirrors) needs.

        Parameters
        ----------
        input_shape : tuple of int
            The block's per-sample input shape ``(C, H, W)``.
        """
        inner = self.output_shape_for(input_shape)
        out = {"conv1.W": (self.conv1, tuple(input_shape)), "conv2.W": (self.conv2, inner)}
        if self.short is not None:
            out["short.W"] = (self.short, tuple(input_shape))
        return out

    @property
    def n_params(self) -> int:
        return sum(part.n_params for _, part in self._parts())

    @staticmethod
    def _sub(params, name):
        if params is None:
            return None
        pre = name + "."
        return {k[len(pre):]: v for k, v in params.items() if k.startswith(pre)}

    def output_shape_for(self, input_shape) -> tuple:
        return self.conv1.output_shape_for(input_shape)

    def build(self, input_shape) -> tuple:
        out = self.output_shape_for(input_shape)
        self.input_shape, self.output_shape = tuple(int(s) for s in input_shape), out
        return out

    # -- shortcut option A -----------------------------------------------------------------
    def _pad_channels(self):
        return (self.out_channels - self.in_channels) // 2

    def _shortcut_a(self, x, out_hw):
        xp = get_array_module(x)
        s, p = self.stride, self._pad_channels()
        sub = x[:, :, ::s, ::s][:, :, :out_hw[0], :out_hw[1]]
        if p == 0:
            return sub
        out = xp.zeros((x.shape[0], self.out_channels) + tuple(out_hw), dtype=x.dtype)
        out[:, p:p + self.in_channels] = sub
        return out

    def _shortcut_a_backward(self, x, delta):
        xp = get_array_module(delta)
        s, p = self.stride, self._pad_channels()
        oh, ow = int(delta.shape[2]), int(delta.shape[3])
        dx = xp.zeros(x.shape, dtype=delta.dtype)
        dx[:, :, 0:s * (oh - 1) + 1:s, 0:s * (ow - 1) + 1:s] = delta[:, p:p + self.in_channels]
        return dx

    # -- passes ----------------------------------------------------------------------------
    def forward(self, x, params=None):
        """Evaluation pass (batch norm with its running statistics)."""
        u = self.bn1.forward(self.conv1.forward(x, self._sub(params, "conv1")),
                             self._sub(params, "bn1"))
        u = self.activation.forward(u, out=u)
        z = self.bn2.forward(self.conv2.forward(u, self._sub(params, "conv2")),
                             self._sub(params, "bn2"))
        z += self._short_forward(x, params, tuple(z.shape[2:]), training=False)[0]
        return z

    __call__ = forward

    def _short_forward(self, x, params, out_hw, training):
        if not self.projects:
            return x, None
        if self.short is None:
            return self._shortcut_a(x, out_hw), None
        if training:
            s, c1 = self.short.forward_cache(x, self._sub(params, "short"))
            z, c2 = self.short_bn.forward_cache(s, self._sub(params, "short_bn"))
            return z, (s, c1, c2)
        s = self.short.forward(x, self._sub(params, "short"))
        return self.short_bn.forward(s, self._sub(params, "short_bn")), None

    def forward_cache(self, x, params=None):
        """Training pass: ``(z, cache)`` with every sub-layer's input and cache."""
        a1, c1 = self.conv1.forward_cache(x, self._sub(params, "conv1"))
        b1, cb1 = self.bn1.forward_cache(a1, self._sub(params, "bn1"))
        u = self.activation.forward(b1)
        a2, c2 = self.conv2.forward_cache(u, self._sub(params, "conv2"))
        z, cb2 = self.bn2.forward_cache(a2, self._sub(params, "bn2"))
        sz, sc = self._short_forward(x, params, tuple(z.shape[2:]), training=True)
        z += sz
        return z, (a1, c1, b1, cb1, u, a2, c2, cb2, sc)

    def backward(self, x, delta, feedback=None, need_input_grad=True, cache=None):
        """Gradients of every parameter (keys of :meth:`params`) and
        :math:`\\partial L/\\partial x`."""
        if feedback is not None:
            want = sorted(self.feedback_weights())
            if not isinstance(feedback, dict) or sorted(feedback) != want:
                got = sorted(feedback) if isinstance(feedback, dict) else type(feedback).__name__
                raise ValueError(f"{self!r} holds several weights: feedback must be a dict "
                                 f"with one array per weight, keys {want}, got {got}")
        fb = feedback or {}
        if cache is None:
            cache = self.forward_cache(x)[1]  # note: moves the running statistics once more
        a1, c1, b1, cb1, u, a2, c2, cb2, sc = cache
        grads = {}
        g, d = self.bn2.backward(a2, delta, cache=cb2)
        grads.update({f"bn2.{k}": v for k, v in g.items()})
        g, d = self.conv2.backward(u, d, cache=c2, feedback=fb.get("conv2.W"))
        grads.update({f"conv2.{k}": v for k, v in g.items()})
        d = self.activation.vjp(b1, u, d)
        g, d = self.bn1.backward(a1, d, cache=cb1)
        grads.update({f"bn1.{k}": v for k, v in g.items()})
        g, dx = self.conv1.backward(x, d, cache=c1, need_input_grad=need_input_grad,
                                    feedback=fb.get("conv1.W"))
        grads.update({f"conv1.{k}": v for k, v in g.items()})
        if self.short is not None:
            s, sc1, sc2 = sc
            g, ds = self.short_bn.backward(s, delta, cache=sc2)
            grads.update({f"short_bn.{k}": v for k, v in g.items()})
            g, ds = self.short.backward(x, ds, cache=sc1, need_input_grad=need_input_grad,
                                        feedback=fb.get("short.W"))
            grads.update({f"short.{k}": v for k, v in g.items()})
        elif need_input_grad:
            ds = self._shortcut_a_backward(x, delta) if self.projects else delta
        if need_input_grad:
            dx += ds
        return grads, dx

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Parameters and the batch norms' running statistics, keyed ``"bn1.running_mean"`` …"""
        out = {}
        for name, part in self._parts():
            src = part.state_dict() if hasattr(part, "state_dict") else part.params()
            out.update({f"{name}.{k}": v for k, v in src.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        own = self.state_dict()
        check_state_shapes(self, own, state)
        for name, part in self._parts():
            if hasattr(part, "load_state_dict"):
                part.load_state_dict(self._sub(state, name))
            else:
                for k, v in part.params().items():
                    v[...] = get_array_module(v).asarray(state[f"{name}.{k}"], dtype=v.dtype)

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "stride": self.stride, "shortcut": self.shortcut,
                "activation": self.activation.name, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        s = f", stride={self.stride}" if self.stride != 1 else ""
        return (f"ResidualBlock({self.in_channels}, {self.out_channels}{s}, "
                f"shortcut={self.shortcut!r})")
