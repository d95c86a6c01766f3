"""Per-sample shapes through a stack of layers (what :class:`~bionp.nn.Sequential` checks).

A layer with ``output_shape_for(input_shape)`` says its own output shape (or raises
``ValueError`` saying why the input does not fit); a flat layer without it (dense,
dendritic, noisy) takes ``(in_features,)`` and gives ``(out_features,)``.  Every layer is
checked before any is built, so a network that cannot be made changes nothing.
"""

from __future__ import annotations

__all__ = ["layer_shapes", "prod"]


def prod(shape) -> int:
    """The number of elements of an array of ``shape`` (1 for ``()``).

    Parameters
    ----------
    shape : iterable of int
    """
    out = 1
    for s in shape:
        out *= int(s)
    return out


def _output_shape(layer, shape):
    """Per-sample output shape of ``layer`` for input ``shape`` (``ValueError`` if it does not
    fit); flat layers without ``output_shape_for`` take ``(in_features,)``."""
    fn = getattr(layer, "output_shape_for", None)
    if callable(fn):
        return tuple(fn(shape))
    if tuple(shape) != (layer.in_features,):
        raise ValueError(f"{layer!r} takes {layer.in_features} inputs, got shape {tuple(shape)}")
    return (layer.out_features,)


def _first_input_shape(layers, input_shape):
    if input_shape is not None:
        if isinstance(input_shape, int) and not isinstance(input_shape, bool):
            input_shape = (input_shape,)
        try:
            shape = tuple(int(s) for s in input_shape)
        except TypeError:
            shape = ()
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"input_shape must be a tuple of positive ints (per sample, e.g. "
                             f"(1, 28, 28)), got {input_shape!r}")
        return shape
    first = layers[0]
    own = getattr(first, "input_shape", None)
    if own is not None:
        return tuple(own)
    n = getattr(first, "in_features", None)
    if n is None:
        raise ValueError(
            f"the first layer ({first!r}) does not fix the size of its input: give the "
            "per-sample input shape, e.g. Sequential([...], input_shape=(1, 28, 28))")
    return (int(n),)


def layer_shapes(layers, input_shape) -> list:
    """Per-sample shapes ``[input, out_0, out_1, …]``, every layer checked (nothing changed).

    Parameters
    ----------
    layers : list of layers
    input_shape : tuple of int
        The per-sample input shape.
    """
    shapes = [_first_input_shape(layers, input_shape)]
    for i, layer in enumerate(layers):
        shape = shapes[-1]
        flat_layer = not callable(getattr(layer, "output_shape_for", None))
        if flat_layer and len(shape) > 1:
            raise ValueError(
                f"layer {i} ({layer!r}) takes flat inputs but gets per-sample shape {shape}; "
                f"put a Flatten() before it (it gives {prod(shape)} features)")
        if flat_layer and i > 0 and shape[0] != layer.in_features:
            prev = layers[i - 1]
            how = ""
            if len(shapes[-2]) > 1:
                how = f" (its input {shapes[-2]} flattened)"
            raise ValueError(
                f"layer {i} ({layer!r}) takes {layer.in_features} inputs but layer "
                f"{i - 1} ({prev!r}) gives {shape[0]}{how}")
        try:
            shapes.append(_output_shape(layer, shape))
        except ValueError as exc:
            raise ValueError(f"layer {i}: {exc}") from None
    if len(shapes[-1]) != 1:
        raise ValueError(f"the last layer ({layers[-1]!r}) gives per-sample shape {shapes[-1]}; "
                         "a network's output must be flat (batch, classes): end with Flatten() "
                         "and a Dense layer")
    return shapes
