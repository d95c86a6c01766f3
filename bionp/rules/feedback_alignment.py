r"""Feedback alignment (Lillicrap et al. 2016) and direct feedback alignment (Nøkland 2016).

Feedback alignment (FA)
-----------------------
The backward pass of backprop with each forward matrix :math:`W_l` replaced by
a fixed random matrix :math:`B_l` of the same shape:

.. math::

    \delta_{L-1} = \frac{\partial L}{\partial z_{L-1}}, \qquad
    \delta_{l-1} = f'_{l-1}(z_{l-1}) \odot (\delta_l B_l), \qquad
    g_{W_l} = \delta_l^\top a_{l-1}, \qquad g_{b_l} = \textstyle\sum_n \delta_{l,n}.

``rule.B[l].shape == net.layers[l].W.shape``; ``B[0]`` is ``None`` (nothing is
sent below the first layer).  Inside a residual block each convolution has its own
``B``: ``rule.B[l]`` is then a dict keyed like the block's weights (``"conv1.W"``, …).
The last layer's gradient is exact.  With :math:`B_l = W_l` the rule is backprop.  The
Microlearning tutorial's ``B`` (shape ``(hidden, out)``) is ``rule.B[1].T``.

Direct feedback alignment (DFA)
-------------------------------
The output error :math:`e = \partial L/\partial z_{L-1}` is sent to every hidden
layer through its own fixed random matrix :math:`D_l` of shape
``(n_out, n_hidden_l)``:

.. math::

    \delta_l = f'_l(z_l) \odot (e D_l), \qquad l < L-1 .

Convolutional networks
----------------------
For a convolution :math:`B_l` has the kernel's shape ``(out, in, kh, kw)`` and stands in
for it in the transposed convolution that sends :math:`\delta_l` back
(:mod:`bionp.nn.conv`).  Pooling and flatten layers have no weights: the error passes
through their exact backward pass (routing to the maxima, spreading over the windows,
reshaping).  Batch norm uses its own per-channel scale :math:`\gamma` in its backward
pass (it is not a weight matrix; biotorch leaves it alone too).  DFA's :math:`D_l` maps
the output error to the whole flattened output map of layer :math:`l`
(``(n_out, C*H'*W')`` for a convolution), reshaped to ``(N, C, H', W')``, or with
``maps="channel"`` to each channel (``(n_out, C)``, broadcast over ``H' x W'``); layers without
parameters get no signal.  In a residual block (:mod:`bionp.nn.residual`), under FA
each convolution (option B's 1x1 projection too) sends the delta back through its own
:math:`B`; the block's batch norms, inner activation and shortcut keep their exact
backward.  Under DFA a residual block is one layer: ``D_l`` reaches its output map, and
the weights inside get their gradients through the block's backward pass
(:class:`DirectFeedbackAlignment`, ``blocks=``).

Both return :math:`+\hat g \approx \partial L/\partial\theta` of the
batch-mean loss (descent :math:`\theta \leftarrow \theta - \mathrm{lr}\,g`);
tutorial η ≡ ``lr = η N / 2`` as for backprop (:mod:`bionp.rules.base`).
"""

from __future__ import annotations

from math import prod

from bionp.backend import check_same_backend
from bionp.nn.init import get_initializer, initialize
from bionp.random import check_rng
from bionp.rules.base import ErrorPropagationRule
from bionp.validation import check_real

__all__ = ["FeedbackAlignment", "DirectFeedbackAlignment"]


def _feedforward_weights(net, rule_name):
    """``[None, W_1, …]``: the weights that feedback matrices stand in for (None where none
    is needed).

    Layer 0 sends no delta back, so it may be any layer (e.g. dendritic).  Layers without
    parameters (pooling, flatten) and batch norm (``feedback_free``: its backward uses its
    own per-channel scale) need none.  Every other layer needs a weight ``W`` (dense
    ``(out, in)``, convolution ``(out, in, kh, kw)``).  A block with several weights inside
    (``composite``, e.g. :class:`~bionp.nn.ResidualBlock`) gets a dict of them,
    ``layer.feedback_weights()`` (``{"conv1.W": …, "conv2.W": …}``; also as layer 0, whose
    second convolution sends a delta to its first).
    """
    out = []
    for l, layer in enumerate(net.layers):
        composite = getattr(layer, "composite", False)
        if l == 0 and not composite:
            out.append(None)
            continue
        params = layer.params()
        if not params or getattr(layer, "feedback_free", False):
            out.append(None)
            continue
        if composite:
            if not hasattr(layer, "feedback_weights"):
                raise ValueError(
                    f"{rule_name} needs a feedback matrix for every weight inside layer {l} "
                    f"({layer!r}), which holds several (its parameters: {sorted(params)}) but "
                    "does not say which (no feedback_weights()): train it with Backprop")
            out.append(dict(layer.feedback_weights()))
            continue
        W = params.get("W")
        if W is None or getattr(W, "ndim", 0) < 2:
            raise ValueError(
                f"{rule_name} sends the error back through a random matrix in place of each "
                f"layer's weights W, but layer {l} ({layer!r}) has no such W (its parameters: "
                f"{sorted(params)}); put such a layer first (it needs no feedback) or "
                "train the network with Backprop")
        out.append(W)
    return out


def _map_weights(weights, fn) -> list:
    """``fn(l, key, W)`` for every weight of :func:`_feedforward_weights`' list, in order
    (``key`` None for a plain layer, the parameter's name inside a block); None kept."""
    out = []
    for l, W in enumerate(weights):
        if W is None:
            out.append(None)
        elif isinstance(W, dict):
            out.append({k: fn(l, k, w) for k, w in W.items()})
        else:
            out.append(fn(l, None, W))
    return out


def _shapes(weights) -> list:
    """The shapes of :func:`_feedforward_weights`' list (dicts of shapes inside blocks)."""
    return _map_weights(weights, lambda l, k, W: None if W is None else tuple(W.shape))


def _like_weights(layer, W, l, rng):
    """``B[l]`` drawn with layer ``l``'s own initialiser and scale (``init="like_weights"``)."""
    init = getattr(layer, "init", None)
    if init is None:
        raise ValueError(
            f"init='like_weights' draws B[{l}] as layer {l} drew its weights, but layer {l} "
            f"({layer!r}) does not say how (no 'init' attribute); give an initialiser by name, "
            "e.g. init='xavier_uniform'")
    return initialize(init, tuple(W.shape), getattr(layer, "init_scale", 0.1), rng, W.dtype)


class FeedbackAlignment(ErrorPropagationRule):
    """Feedback alignment: fixed random feedback matrices ``B[l]`` in the backward pass.

    Parameters
    ----------
    init : str, default ``"normal"``
        Initialiser of ``B`` (:mod:`bionp.nn.init`; for a kernel ``(out, in, kh, kw)`` the
        fans are ``in*kh*kw`` and ``out*kh*kw``), or ``"like_weights"``: each ``B[l]``
        drawn as layer ``l`` drew its ``W`` (its own ``init`` and ``init_scale``, e.g. He
        or Xavier by each kernel's fans), as biotorch draws its feedback weights (what it
        changes on LeNet: ``examples/conv_rules.py``).
    scale : float or None
        Scale for ``normal``/``uniform``; ``None`` takes the network's
        ``init_scale`` (as the tutorial draws ``B`` like ``W``).
    rng : int, Generator or None
        Draws ``B`` (on first use or in :meth:`initialize`).

    Attributes
    ----------
    B : list or None
        Aligned with ``net.layers``; ``B[0]`` is None.  Created by
        :meth:`initialize` or lazily by the first :meth:`gradients` call.
    """

    name = "feedback_alignment"

    def __init__(self, init="normal", scale=None, rng=None):
        if init != "like_weights":
            get_initializer(init)  # an unknown name is refused here, with the known ones
        self.init = init
        self.scale = None if scale is None else check_real("scale", scale, low=0, low_open=True)
        self._rng = check_rng(rng)
        self.B = None

    def _draws_pending(self) -> bool:
        return self.B is None

    def initialize(self, net):
        """Draw ``B[l]`` (shape of ``W[l]``, ``l >= 1``) for ``net``; returns ``self``."""
        self._check_net(net)
        scale = self.scale if self.scale is not None else getattr(net, "init_scale", 0.1)
        weights = _feedforward_weights(net, type(self).__name__)
        if self.init == "like_weights":
            def draw(l, key, W):
                layer = net.layers[l]
                return _like_weights(layer if key is None else
                                     getattr(layer, key.split(".")[0]), W, l, self._rng)
        else:
            def draw(l, key, W):
                return initialize(self.init, tuple(W.shape), scale, self._rng, W.dtype)
        self.B = _map_weights(weights, draw)
        return self

    def _feedback(self, net):
        if self.B is None:
            self.initialize(net)
        weights = _feedforward_weights(net, type(self).__name__)
        want, have = _shapes(weights), _shapes(self.B)
        if want != have:
            raise ValueError(
                f"{type(self).__name__} was initialised for a network whose feedback matrices "
                f"have shapes {have[1:]}, but this network's weights have shapes {want[1:]}; "
                "use one rule object per network (or call rule.initialize(net) to redraw B)"
            )
        _map_weights(weights, lambda l, k, W: check_same_backend(
            self.B[l] if k is None else self.B[l][k], W,
            names=(f"B[{l}]" if k is None else f"B[{l}][{k!r}]", f"W[{l}]")))
        return self.B

    def _propagation(self, net) -> dict:
        return {"feedback": self._feedback(net)}

    def get_config(self) -> dict:
        return {"name": self.name, "init": self.init, "scale": self.scale}


def _direct_shapes(net, maps="full", at="output") -> list:
    """Shapes of DFA's matrices: ``(n_out, size of layer l's output)`` for each hidden layer
    with parameters (a residual block's output map for a block), None for the others and
    the output layer.  With ``maps="channel"`` a ``(C, H, W)`` map takes ``(n_out, C)``.
    With ``at="next_input"`` the matrix moves up to the last of the parameter-free layers
    (pooling, flatten) that follow the layer, its output's size."""
    n_out = net.out_features
    shapes = getattr(net, "shapes", None)
    layers = net.layers
    out = [None] * len(layers)
    for l, layer in enumerate(layers[:-1]):
        if not layer.params():
            continue
        k = l
        while at == "next_input" and k + 2 < len(layers) and not layers[k + 1].params():
            k += 1
        if shapes is not None:
            shape = tuple(int(s) for s in shapes[k + 1])
            size = shape[0] if maps == "channel" and len(shape) == 3 else prod(shape)
        else:
            size = layer.out_features
        out[k] = (n_out, size)
    return out


def _block_weights(net) -> list:
    """``{key: W}`` of each block with several weights inside (``composite``), else None."""
    weights = _feedforward_weights(net, "DirectFeedbackAlignment")
    return [w if isinstance(w, dict) else None for w in weights]


#: how DFA trains the weights inside a residual block (``blocks=``)
DFA_BLOCKS = ("backprop", "feedback")
#: how DFA's ``D[l]`` reaches a layer's ``(C, H, W)`` output map (``maps=``)
DFA_MAPS = ("full", "channel")
#: where DFA's signal for a layer arrives (``at=``)
DFA_AT = ("output", "next_input")


class DirectFeedbackAlignment(ErrorPropagationRule):
    r"""Direct feedback alignment: output error to each hidden layer through fixed ``D[l]``.

    Residual blocks (:class:`~bionp.nn.ResidualBlock`) are one layer each: ``D[l]`` sends
    the output error to the block's output map :math:`z_l` (the sum of the main path and
    the shortcut, before the activation that follows the block),
    :math:`\delta_l = f'_l(z_l) \odot (e D_l)`, and the weights inside the block get
    their gradients from :math:`\delta_l` through the block's own backward pass (batch
    norms, inner activation and shortcut exact).  This is the "macro" placement of Launay
    et al. (2020, "Direct feedback alignment scales to modern deep learning tasks and
    architectures"), who deliver DFA's feedback to the output of each Transformer block
    and compute the gradients inside a block locally; Nøkland (2016) has no residual
    blocks.  Inside the block the delta passes from the second convolution to the first
    either through the convolution's own kernel (``blocks="backprop"``, the default:
    local weight transport inside the block, none between blocks) or through a fixed
    random kernel of the same shape (``blocks="feedback"``: feedback alignment inside
    the block, no weight transport anywhere; ``block_B[l]`` holds the block's matrices,
    ``{"conv1.W": …, "conv2.W": …}``, drawn by ``init``/``scale`` after ``D``; only
    ``"conv2.W"``'s carries a delta, the others stand in for kernels whose input gradient
    DFA never needs, since no delta leaves a block).  biotorch's
    DFA instead gives every convolution, inside blocks too, its own matrix from the output
    error (the "micro" placement); that is not implemented here.  No delta crosses from a
    block to the layer below it: each layer gets its own from ``e``.

    Parameters
    ----------
    init : str, default ``"normal"``
        Initialiser of ``D`` (and ``block_B``; :mod:`bionp.nn.init`).
    scale : float or None
        Scale for ``normal``/``uniform``; ``None`` takes the network's ``init_scale``.
    rng : int, Generator or None
        Draws ``D`` (and ``block_B``) on first use or in :meth:`initialize`.
    blocks : {"backprop", "feedback"}, default ``"backprop"``
        How the delta passes between the weights inside a residual block (above).
    maps : {"full", "channel"}, default ``"full"``
        How the error reaches a layer whose output is a ``(C, H, W)`` map (a convolution,
        a residual block).  ``"full"``: every element of the map has its own column of
        ``D[l]``, shape ``(n_out, C*H*W)``.  ``"channel"``: one column per channel,
        shape ``(n_out, C)``, the same signal at every position of a channel,
        :math:`\delta_{l,c,h,w} = f'_l(z_{l,c,h,w}) \, (e D_l)_c`: the output error
        broadcast over the map, as biotorch's convolutional DFA sends it (through a
        kernel-sized matrix, to the layer's input).  Dense layers are the same in both.
    at : {"output", "next_input"}, default ``"output"``
        Where the signal for a layer with parameters arrives.  ``"output"``: at its own
        output (Nøkland's DFA).  ``"next_input"``: after the parameter-free layers that
        follow it (pooling, flatten), where the next weights read it, as biotorch delivers
        DFA's feedback to each layer's input; their exact backward brings it down
        (max-pooling sends it to the window's maximum only, so the units the network does
        not use get no update), :math:`\delta_l = f'_l(z_l) \odot
        P^\top(e D_l)` with :math:`P` the pooling and flattening after layer ``l``.
        ``D[l]`` then sits on the last of those layers.  Without such layers both are the
        same.

    Attributes
    ----------
    D : list or None
        Aligned with ``net.layers``: ``D[l]`` has shape ``(n_out, out_features_l)``
        for hidden layers (``out_features_l`` the size of layer ``l``'s per-sample output,
        e.g. ``C*H'*W'`` for a convolution or a residual block: the error reaches the whole
        feature map; ``C`` with ``maps="channel"``); ``D[l]`` is None for layers without
        parameters (pooling, flatten: they need no signal; with ``at="next_input"`` the
        last of them after a layer holds that layer's matrix instead) and for the output
        layer.
    block_B : list or None
        With ``blocks="feedback"``: aligned with ``net.layers``, a dict of fixed random
        kernels for each residual block (keys of its ``feedback_weights()``), None
        elsewhere.  None with ``blocks="backprop"``.
    """

    name = "direct_feedback_alignment"

    def __init__(self, init="normal", scale=None, rng=None, blocks="backprop", maps="full",
                 at="output"):
        get_initializer(init)  # an unknown name is refused here, with the known ones
        if blocks not in DFA_BLOCKS:
            raise ValueError(f"blocks must be one of {', '.join(map(repr, DFA_BLOCKS))} (how the "
                             f"delta passes inside a residual block), got {blocks!r}")
        if maps not in DFA_MAPS:
            raise ValueError(f"maps must be one of {', '.join(map(repr, DFA_MAPS))} (how the "
                             f"error reaches a (C, H, W) output map), got {maps!r}")
        if at not in DFA_AT:
            raise ValueError(f"at must be one of {', '.join(map(repr, DFA_AT))} (where the "
                             f"signal for a layer arrives), got {at!r}")
        self.maps = maps
        self.at = at
        self.init = init
        self.scale = None if scale is None else check_real("scale", scale, low=0, low_open=True)
        self._rng = check_rng(rng)
        self.blocks = blocks
        self.D = None
        self.block_B = None

    def _draws_pending(self) -> bool:
        return self.D is None

    def initialize(self, net):
        """Draw ``D[l]`` of shape ``(n_out, out_features_l)`` for each hidden layer (then,
        with ``blocks="feedback"``, the blocks' kernels ``block_B``); returns ``self``."""
        self._check_net(net)
        scale = self.scale if self.scale is not None else getattr(net, "init_scale", 0.1)
        shapes = _direct_shapes(net, self.maps, self.at)
        blocks = _block_weights(net) if self.blocks == "feedback" else None
        self.D = [None if shape is None else
                  initialize(self.init, shape, scale, self._rng, net.dtype)
                  for shape in shapes]
        self.block_B = None if blocks is None else _map_weights(
            blocks, lambda l, k, W: initialize(self.init, tuple(W.shape), scale, self._rng,
                                               W.dtype))
        return self

    def _direct(self, net):
        if self.D is None:
            self.initialize(net)
        want = _direct_shapes(net, self.maps, self.at)
        have = [None if D is None else tuple(D.shape) for D in self.D]
        if want != have:
            raise ValueError(
                f"DirectFeedbackAlignment was initialised for a network whose direct feedback "
                f"matrices have shapes {have[:-1]}, but this network needs {want[:-1]}; use one "
                "rule object per network (or call rule.initialize(net))"
            )
        if self.blocks == "feedback":
            want_b = _shapes(_block_weights(net))
            have_b = None if self.block_B is None else _shapes(self.block_B)
            if want_b != have_b:
                raise ValueError(
                    f"DirectFeedbackAlignment(blocks='feedback') holds block kernels of shapes "
                    f"{have_b}, but this network's residual blocks need {want_b}; use one rule "
                    "object per network (or call rule.initialize(net))")
        return self.D

    def _propagation(self, net) -> dict:
        D = self._direct(net)
        if self.blocks == "feedback":
            return {"direct": D, "feedback": self.block_B}
        return {"direct": D}

    def state_dict(self) -> dict:
        """The generator state, ``D`` and (``blocks="feedback"``) ``block_B``."""
        out = super().state_dict()
        out["block_B"] = self.block_B
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (``block_B`` absent: left as it is)."""
        super().load_state_dict(state)
        if "block_B" in state:
            value = state["block_B"]
            self.block_B = None if value is None else list(value)

    def get_config(self) -> dict:
        config = {"name": self.name, "init": self.init, "scale": self.scale,
                  "blocks": self.blocks}
        if self.maps != "full":  # earlier checkpoints' configs stay valid
            config["maps"] = self.maps
        if self.at != "output":
            config["at"] = self.at
        return config
