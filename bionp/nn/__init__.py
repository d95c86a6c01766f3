"""Networks: layers, activations, losses, initialisers and the MLP.

Contract::

    net = bionp.nn.MLP([784, 500, 10], activation="sigmoid", rng=0)
    net = bionp.nn.Sequential([layer0, layer1, ...], activations=["relu", ..., "identity"])
    net = bionp.nn.Sequential([Conv2d(1, 6, 5), MaxPool2d(2), Flatten(), Dense(6*12*12, 10)],
                              ["relu", "identity", "identity", "identity"],
                              input_shape=(1, 28, 28))      # images NCHW
    net.layers[i].W   # (out, in);  net.layers[i].b  # (out,)
    out = net.forward(x)                   # (batch, in) -> (batch, out)
    cache = net.forward_cache(x)           # inputs / pre / post per layer
    loss = bionp.nn.MSELoss()(out, target) # 0-d array; also CrossEntropyLoss
"""

from bionp.nn import init, models
from bionp.nn.activations import (
    ACTIVATIONS, Activation, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, get_activation,
)
from bionp.nn.batchnorm import BatchNorm1d, BatchNorm2d
from bionp.nn.conv import Conv2d
from bionp.nn.layers import Dense
from bionp.nn.losses import (
    LOSSES, CrossEntropyLoss, Loss, MSELoss, get_loss, output_delta, output_loss, prepare_target,
)
from bionp.nn.network import MLP, ForwardCache, Sequential, is_dense_like
from bionp.nn.noisy import LearnableNoiseDense, NoisyDense, NoisyWeights
from bionp.nn.pooling import AvgPool2d, MaxPool2d
from bionp.nn.reshape import Flatten
from bionp.nn.residual import ResidualBlock

__all__ = [
    "ACTIVATIONS", "Activation", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d",
    "CrossEntropyLoss", "Dense", "Flatten", "MaxPool2d", "ResidualBlock", "ForwardCache",
    "Identity",
    "LOSSES", "LeakyReLU", "LearnableNoiseDense", "Loss", "MLP", "MSELoss", "NoisyDense",
    "NoisyWeights", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "get_activation",
    "get_loss", "init", "is_dense_like", "models", "output_delta", "output_loss", "prepare_target",
]
