r"""Optimisers that update a network's arrays in place.

``opt = SGD(net, lr=0.1, momentum=0.9)``; ``opt.step(grads)`` with ``grads`` as
returned by any rule (list aligned with the layers of ``{"W", "b"}``).

SGD (PyTorch's convention, dampening 0)
    :math:`g \leftarrow g + \lambda\theta`; :math:`v \leftarrow \mu v + g`;
    :math:`\theta \leftarrow \theta - \mathrm{lr}\,(g + \mu v)` (Nesterov) or
    :math:`\theta - \mathrm{lr}\,v`; with :math:`\mu = 0`, :math:`\theta - \mathrm{lr}\,g`.
Adam (Kingma & Ba 2015)
    :math:`g \leftarrow g + \lambda\theta`; :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`;
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`;
    :math:`\theta \leftarrow \theta - \mathrm{lr}\,\hat m / (\sqrt{\hat v} + \epsilon)` with
    :math:`\hat m = m/(1-\beta_1^t)`, :math:`\hat v = v/(1-\beta_2^t)`.

The optimiser keeps references to the network's arrays: never rebind
``layer.W`` (``net.load_state_dict`` copies in place).  Scratch buffers are
allocated once, so a step allocates nothing of parameter size.
"""

from __future__ import annotations

from bionp import backend_dense
from bionp.backend import check_same_backend, get_array_module, is_array
from bionp.validation import check_float_dtype, check_real

__all__ = ["Optimizer", "SGD", "Adam"]


def _param_list(params_or_net):
    if hasattr(params_or_net, "parameters"):
        params = params_or_net.parameters()
    else:
        try:
            params = list(params_or_net)
        except TypeError:
            params = None
    if not params or not all(isinstance(p, dict) for p in params):
        raise TypeError("an optimiser needs a network (with .parameters()) or a list of dicts "
                        "{'W': array, 'b': array} aligned with its layers")
    for i, p in enumerate(params):
        for k, v in p.items():
            if not is_array(v):
                raise TypeError(f"parameter {i}.{k} is not an array ({type(v).__name__})")
    return params


class Optimizer:
    """Base class: per-parameter state, in-place ``step``, ``state_dict``.

    Parameters
    ----------
    params_or_net : Network or list of dict
        A network (its ``parameters()``) or a list of ``{name: array}`` dicts, one per layer.
    lr : float
        Learning rate, > 0.
    weight_decay : float, default 0.0
        L2 weight decay (added to the gradient), >= 0.
    """

    _state_names: tuple = ()

    def __init__(self, params_or_net, lr: float, weight_decay: float = 0.0):
        self.lr = check_real("lr", lr, low=0, low_open=True)
        self.weight_decay = check_real("weight_decay", weight_decay, low=0)
        self.params = _param_list(params_or_net)
        self.step_count = 0
        self._scratch = [{k: get_array_module(v).empty_like(v) for k, v in p.items()}
                         for p in self.params]
        self._decayed = [{k: get_array_module(v).empty_like(v) for k, v in p.items()}
                         for p in self.params] if self.weight_decay else None
        self.zero_state()

    def zero_state(self) -> None:
        """Reset the per-parameter state (momenta) and the step count."""
        self.state = {name: [{k: get_array_module(v).zeros_like(v) for k, v in p.items()}
                             for p in self.params] for name in self._state_names}
        self.step_count = 0

    def _matches(self, grads) -> bool:
        """Whether ``grads`` has exactly the parameters' layout: arrays of their type, shape
        and dtype (the check of every step, before the detailed one that names a fault)."""
        params = self.params
        if type(grads) not in (list, tuple) or len(grads) != len(params):
            return False
        for p, g in zip(params, grads):
            if type(g) is not dict or len(g) != len(p):  # as many keys, and each of p's below
                return False
            for k, v in p.items():
                a = g.get(k)  # None (a missing key) is not of v's type
                if type(a) is not type(v) or a.shape != v.shape or a.dtype != v.dtype:
                    return False
        return True

    def _check(self, grads):
        if self._matches(grads):
            return
        if not isinstance(grads, (list, tuple)) or len(grads) != len(self.params):
            n = len(grads) if isinstance(grads, (list, tuple)) else type(grads).__name__
            raise ValueError(
                f"gradients do not match the parameters this optimiser was built for: expected a "
                f"list of {len(self.params)} dicts (one per layer), got {n}; was the optimiser "
                "created for another network?"
            )
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if not isinstance(g, dict) or set(g) != set(p):
                raise ValueError(
                    f"gradients of layer {i} have keys "
                    f"{sorted(g) if isinstance(g, dict) else g!r}, "
                    f"expected {sorted(p)}; was the optimiser created for another network?"
                )
            for k in p:
                if not is_array(g[k]):
                    raise TypeError(f"gradient {i}.{k} must be an array of the parameters' "
                                    f"backend, got {type(g[k]).__name__}")
                check_float_dtype(g[k], f"gradient {i}.{k}")
                if tuple(g[k].shape) != tuple(p[k].shape):
                    raise ValueError(
                        f"gradient {i}.{k} has shape {tuple(g[k].shape)}, expected "
                        f"{tuple(p[k].shape)}; was the optimiser created for another network?"
                    )
                check_same_backend(g[k], p[k], names=(f"gradient {i}.{k}", f"parameter {i}.{k}"))

    def step(self, grads, *, backup=None) -> None:
        """Apply one update in place.

        ``backup`` (optional): a list aligned with the parameters of dicts of arrays of their
        shapes and dtypes, which receive each parameter's value before the update (what a
        training loop keeps to undo a diverged step); SGD writes it in the update's own pass
        where its compiled kernel applies.
        """
        self._check(grads)
        if backup is not None:
            self._check_backup(backup)
        self.step_count += 1
        update, fused = self._update, self._fused_update
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if backup is None:
                for k, theta in p.items():
                    update(i, k, theta, g[k])
                continue
            saved = backup[i]
            for k, theta in p.items():
                if not fused(i, k, theta, g[k], saved[k]):
                    saved[k][...] = theta
                    update(i, k, theta, g[k])

    def updates_exactly(self, net) -> bool:
        """Whether this optimiser's parameters are ``net.parameters()``: the same arrays in the
        same layers (so a backup aligned with the network is aligned with them)."""
        mine = self.params
        theirs = net.parameters()
        return len(mine) == len(theirs) and all(
            a.keys() == b.keys() and all(a[k] is b[k] for k in a) for a, b in zip(mine, theirs))

    def _check_backup(self, backup) -> None:
        if not self._matches(backup):
            raise ValueError(
                f"backup must be a list of {len(self.params)} dicts (one per layer) holding an "
                "array of each parameter's type, shape and dtype")

    def _fused_update(self, i, k, theta, g, backup) -> bool:
        """The update with ``backup[...] = theta`` in one compiled pass; ``False`` (nothing
        done) where there is none: :meth:`step` then copies and calls :meth:`_update`."""
        return False

    def _grad_with_decay(self, i, k, theta, g):
        if not self.weight_decay:
            return g
        xp = get_array_module(theta)
        buf = self._decayed[i][k]
        xp.multiply(theta, theta.dtype.type(self.weight_decay), out=buf)
        buf += g
        return buf

    def _update(self, i, k, theta, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def state_dict(self) -> dict:
        """``{"name", "step", "hyperparameters", "state": {"<buffer>.<layer>.<W|b>": array}}``."""
        arrays = {}
        for name, per_layer in self.state.items():
            for i, d in enumerate(per_layer):
                for k, v in d.items():
                    arrays[f"{name}.{i}.{k}"] = v
        return {"name": type(self).__name__, "step": self.step_count,
                "hyperparameters": self.hyperparameters(), "state": arrays}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (arrays copied in place; hyperparameters restored)."""
        if state.get("name") != type(self).__name__:
            raise ValueError(f"state is for {state.get('name')!r}, not {type(self).__name__}")
        own = self.state_dict()["state"]
        arrays = state["state"]
        if set(arrays) != set(own):
            raise ValueError(f"optimiser state does not match: expected {sorted(own)}, "
                             f"got {sorted(arrays)}")
        for key, v in own.items():
            src = arrays[key]
            if tuple(src.shape) != tuple(v.shape):
                raise ValueError(f"{key}: expected shape {tuple(v.shape)}, got {tuple(src.shape)}")
            v[...] = get_array_module(v).asarray(src, dtype=v.dtype)
        for k, val in state.get("hyperparameters", {}).items():
            setattr(self, k, val)
        self.step_count = int(state["step"])

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay.

    Parameters
    ----------
    params_or_net : Network or list of dict
        A network (its ``parameters()``) or a list of ``{name: array}`` dicts, one per layer.
    lr : float
        Learning rate, > 0.
    momentum : float, default 0.0
        Momentum coefficient in ``[0, 1)``; 0: plain SGD.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float, default 0.0
        L2 weight decay (added to the gradient), >= 0.
    """

    def __init__(self, params_or_net, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        check_real("momentum", momentum, low=0, high=1, high_open=True)
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self._state_names = ("momentum",) if momentum else ()
        super().__init__(params_or_net, lr, weight_decay)

    def _fused_update(self, i, k, theta, g, backup) -> bool:
        if theta.size < backend_dense.MIN_SIZE:  # (what sgd_step would say, sooner)
            return False
        if type(self)._update is not SGD._update:  # a subclass's own update is its definition
            return False
        return backend_dense.sgd_step(
            get_array_module(theta), theta, g, self.lr,
            v=self.state["momentum"][i][k] if self.momentum else None,
            momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay,
            backup=backup)

    def _update(self, i, k, theta, g):
        if theta.size >= backend_dense.MIN_SIZE and self._fused_update(i, k, theta, g, None):
            return  # the same numbers in one pass
        xp = get_array_module(theta)
        dt = theta.dtype.type
        if self.weight_decay:
            g = self._grad_with_decay(i, k, theta, g)
        buf = self._scratch[i][k]
        if self.momentum:
            v = self.state["momentum"][i][k]
            v *= dt(self.momentum)
            v += g
            if self.nesterov:
                xp.multiply(v, dt(self.momentum), out=buf)
                buf += g
                d = buf
            else:
                d = v
            xp.multiply(d, dt(self.lr), out=buf)
        else:
            xp.multiply(g, dt(self.lr), out=buf)
        theta -= buf

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam with bias correction and optional (coupled, L2) weight decay.

    Parameters
    ----------
    params_or_net : Network or list of dict
        A network (its ``parameters()``) or a list of ``{name: array}`` dicts, one per layer.
    lr : float, default 1e-3
        Learning rate, > 0.
    betas : tuple of float, default (0.9, 0.999)
        Decay rates of the first and second moment averages, each in ``[0, 1)``.
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.0
        L2 weight decay (added to the gradient), >= 0.
    """

    _state_names = ("m", "v")

    def __init__(self, params_or_net, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (check_real("betas[0]", b1, low=0, high=1, high_open=True),
                      check_real("betas[1]", b2, low=0, high=1, high_open=True))
        self.eps = check_real("eps", eps, low=0, low_open=True)
        super().__init__(params_or_net, lr, weight_decay)

    def _update(self, i, k, theta, g):
        xp = get_array_module(theta)
        dt = theta.dtype.type
        b1, b2 = self.betas
        g = self._grad_with_decay(i, k, theta, g)
        m = self.state["m"][i][k]
        v = self.state["v"][i][k]
        buf = self._scratch[i][k]
        m *= dt(b1)
        xp.multiply(g, dt(1 - b1), out=buf)
        m += buf
        xp.multiply(g, g, out=buf)
        buf *= dt(1 - b2)
        v *= dt(b2)
        v += buf
        t = self.step_count
        c1 = 1 - b1 ** t
        c2 = 1 - b2 ** t
        xp.sqrt(v, out=buf)
        buf *= dt(1.0 / c2 ** 0.5)
        buf += dt(self.eps)
        xp.divide(m, buf, out=buf)
        buf *= dt(self.lr / c1)
        theta -= buf

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}
