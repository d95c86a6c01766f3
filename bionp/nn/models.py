"""Ready-made networks of the published benchmarks, built from :mod:`bionp.nn` layers.

``lenet()`` is the LeNet of biotorch's benchmark table (Sanfiz & Akrout 2021,
``biotorch/models/le_net.py``), on 32x32 images (MNIST/Fashion-MNIST padded by 2 pixels,
or CIFAR-10 as is)::

    conv5-6 -> ReLU -> maxpool2 -> conv5-16 -> ReLU -> maxpool2 -> conv5-120 -> ReLU
    -> flatten -> fc84 -> fc classes

Per-sample shapes: ``(C, 32, 32) -> (6, 28, 28) -> (6, 14, 14) -> (16, 10, 10) ->
(16, 5, 5) -> (120, 1, 1) -> (120,) -> (84,) -> (classes,)``.  As in biotorch's model,
nothing sits between the two dense layers (``fc_activation="identity"``); give
``fc_activation="relu"`` for the textbook variant.

``resnet20()`` is He et al.'s (2016) CIFAR ResNet-20 (batch norm, option A shortcuts by
default; see :func:`resnet20`).
"""

from __future__ import annotations

import numbers

from bionp.nn.activations import get_activation
from bionp.nn.batchnorm import BatchNorm2d
from bionp.nn.conv import Conv2d
from bionp.nn.layers import Dense
from bionp.nn.network import Sequential
from bionp.nn.pooling import AvgPool2d, MaxPool2d
from bionp.nn.reshape import Flatten
from bionp.nn.residual import ResidualBlock
from bionp.random import check_rng

__all__ = ["lenet", "resnet20"]


def lenet(in_channels: int = 1, n_classes: int = 10, activation="relu",
          fc_activation="identity", input_size: int = 32, init="he_uniform", rng=None,
          dtype=None) -> Sequential:
    """Biotorch's LeNet (module docstring) as a :class:`~bionp.nn.Sequential` network.

    Parameters
    ----------
    in_channels : int, default 1
        1 for (Fashion-)MNIST, 3 for CIFAR-10.
    n_classes : int, default 10
    activation : str or Activation, default ``"relu"``
        After each convolution.
    fc_activation : str or Activation, default ``"identity"``
        Between the two dense layers (biotorch has none).
    input_size : int, default 32
        Height and width of the input images (at least 32 for conv5-120 to see a 5x5 map).
    init : str or callable, default ``"he_uniform"``
        Initialiser of every weight (biases start at zero).
    rng : int, Generator or None
        Draws the weights layer by layer.
    dtype : float dtype, default ``bionp.get_dtype()``

    Returns
    -------
    Sequential
        Logits output (use :class:`~bionp.nn.CrossEntropyLoss`); takes ``(N, C, H, W)``
        images or flat rows ``(N, C*H*W)``.
    """
    for name, v in (("in_channels", in_channels), ("n_classes", n_classes),
                    ("input_size", input_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if input_size < 32:
        raise ValueError(f"LeNet needs images of at least 32x32 (conv5-120 takes the 5x5 map "
                         f"left after two conv5 and two 2x2 poolings), got input_size="
                         f"{input_size}; pad 28x28 images by 2 pixels on each side")
    act = get_activation(activation)
    fc_act = get_activation(fc_activation)
    rng = check_rng(rng)
    side = ((input_size - 4) // 2 - 4) // 2 - 4  # spatial size after conv5-120
    layers = [
        Conv2d(in_channels, 6, 5, init=init, rng=rng, dtype=dtype), MaxPool2d(2),
        Conv2d(6, 16, 5, init=init, rng=rng, dtype=dtype), MaxPool2d(2),
        Conv2d(16, 120, 5, init=init, rng=rng, dtype=dtype), Flatten(),
        Dense(120 * side * side, 84, init=init, rng=rng, dtype=dtype),
        Dense(84, n_classes, init=init, rng=rng, dtype=dtype),
    ]
    acts = [act, "identity", act, "identity", act, "identity", fc_act, "identity"]
    return Sequential(layers, acts, input_shape=(in_channels, input_size, input_size))


def resnet20(n_classes: int = 10, in_channels: int = 3, shortcut="A", input_size: int = 32,
             rng=None, dtype=None) -> Sequential:
    """He et al.'s (2016) ResNet-20 for CIFAR-10 as a :class:`~bionp.nn.Sequential` network.

    conv3x3-16 + batch norm + ReLU, then three stages of three
    :class:`~bionp.nn.ResidualBlock` s (16, 32, 64 channels; the first block of the second
    and third stages has stride 2), each followed by ReLU, global average pooling and a
    dense layer to the classes: 19 convolutions + 1 dense = 20 weight layers, 0.27 M
    parameters with option A shortcuts (parameter-free: subsample and zero-pad the
    channels, as in the paper's CIFAR experiments); ``shortcut="B"`` uses 1x1 convolutions
    with batch norm where the shape changes.

    Parameters
    ----------
    n_classes : int, default 10
    in_channels : int, default 3
    shortcut : {"A", "B"}, default ``"A"``
    input_size : int, default 32
        Height and width (a multiple of 4; the pooling covers the last 1/4-size map).
    rng : int, Generator or None
    dtype : float dtype, default ``bionp.get_dtype()``
    """
    for name, v in (("n_classes", n_classes), ("in_channels", in_channels),
                    ("input_size", input_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if input_size % 4:
        raise ValueError(f"input_size must be a multiple of 4 (two stride-2 stages), got "
                         f"{input_size}")
    rng = check_rng(rng)
    layers = [Conv2d(in_channels, 16, 3, padding=1, bias=False, init="he_normal", rng=rng,
                     dtype=dtype), BatchNorm2d(16, dtype=dtype)]
    acts = ["identity", "relu"]
    c = 16
    for stage, width in enumerate((16, 32, 64)):
        for i in range(3):
            stride = 2 if stage > 0 and i == 0 else 1
            layers.append(ResidualBlock(c, width, stride=stride, shortcut=shortcut, rng=rng,
                                        dtype=dtype))
            acts.append("relu")
            c = width
    side = input_size // 4
    layers += [AvgPool2d(side), Flatten(), Dense(64, n_classes, init="he_normal", rng=rng,
                                                 dtype=dtype)]
    acts += ["identity", "identity", "identity"]
    return Sequential(layers, acts, input_shape=(in_channels, input_size, input_size))
