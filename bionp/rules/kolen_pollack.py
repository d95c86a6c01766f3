r"""Kolen–Pollack learning (Kolen & Pollack 1994; Akrout et al. 2019).

Feedback alignment whose feedback matrices learn.  Layer :math:`l \ge 1` has a
feedback matrix :math:`B_l` (shape of :math:`W_l`) used in place of
:math:`W_l` in the backward pass (:mod:`bionp.rules.feedback_alignment`).
Both :math:`W_l` and :math:`B_l` receive the **same** locally available update
:math:`A_l = \delta_l^\top a_{l-1}` and both decay with rate :math:`\lambda`:

.. math::

    g_{W_l} = \delta_l^\top a_{l-1} + \lambda W_l, \quad
    g_{b_l} = \textstyle\sum_n \delta_{l,n} + \lambda b_l, \qquad
    B_l \leftarrow B_l - \mathrm{lr}\,(\delta_l^\top a_{l-1} + \lambda B_l),

so that under plain SGD :math:`W_l - B_l` shrinks by the factor
:math:`(1 - \mathrm{lr}\,\lambda)` every step and :math:`B_l \to W_l`.

Design
------
``gradients()`` returns the forward gradients **including** the decay term
(layers ``l >= 1``; layer 0 has no feedback matrix and, as in the tutorial, no
decay) and stores :math:`\delta_l^\top a_{l-1}`.  ``update_after_step(net,
grads, lr)`` (call it after the optimiser step; alias :meth:`KolenPollack.step_feedback`)
applies the B update with plain SGD at ``lr`` (or ``feedback_lr`` when given,
useful with Adam, whose ``lr`` is of another scale).

With momentum or Adam the update applied to :math:`W_l` is a filtered version of
:math:`A_l + \lambda W_l` while :math:`B_l` takes the plain SGD step, so
:math:`B_l - W_l` no longer shrinks by exactly :math:`(1 - \mathrm{lr}\,\lambda)` per step;
the two still receive the same signal and decay toward each other, but ``B`` moves
about :math:`1-\mu` times as far as ``W`` (momentum :math:`\mu`).  A larger plain step
(``feedback_lr_scale``) is unstable early in training, before the momentum has built
up.  ``feedback_optimizer="mirror"`` gives ``B`` the update ``W`` gets: a copy of the
training optimiser (same class and hyperparameters, its own state, the current ``lr``)
steps ``B`` with the gradient :math:`A_l + \lambda B_l`.  ``W`` sees
:math:`A_l + \lambda W_l` (plus the optimiser's own weight decay, which the copy applies
to ``B`` too), so :math:`D = W_l - B_l` follows that optimiser on the quadratic
:math:`\tfrac\lambda2\|D\|^2` and decays to 0 under SGD with any momentum; under Adam
the two are normalised by nearly equal second moments.  This needs the optimiser:
the Trainer passes it (``after_step(net, optimizer)``).

Relation to the Microlearning tutorial
--------------------------------------
The tutorial adds :math:`\eta(\Delta_{err} - 0.1\,W)` with
:math:`\Delta_{err} = -\frac N2 \partial L/\partial W`.  With bionp's
``lr = η N / 2`` this is ``weight_decay = 0.1 η / lr = 0.2 / N`` (``1e-3`` at
``N = 200``), with the plain feedback step: ``KolenPollack.tutorial(batch_size=N)``
(or ``KolenPollack(weight_decay=0.2 / N, feedback_optimizer="sgd")``).

Defaults
--------
``weight_decay=3e-3`` (per unit of ``lr``) and ``feedback_optimizer="mirror"``: the
configuration ``examples/compare_rules.py`` measured best (89.9 % on Fashion-MNIST
after 20 epochs, 784-1024-512-10 ReLU, SGD with Nesterov momentum at lr 0.05), where
``B`` becomes ``W``; in its present 784-256-256-10 setting (lr 0.02, weight decay 5e-4,
with the one-epoch alignment phase below) 89.15 %.  The mirror needs the optimiser: use
:meth:`KolenPollack.after_step`
(the Trainer does); a hand-written loop that calls ``update_after_step(net, grads,
lr)`` needs ``feedback_optimizer="sgd"``.

Alignment phase
---------------
:math:`D = W_l - B_l` starts as the difference of two random matrices and, whatever the
error signal, only shrinks by :math:`(1 - \mathrm{lr}\,\lambda)` per step (momentum
:math:`\mu`: about :math:`\mathrm{lr}\,\lambda/(1-\mu)`).  In a small MLP whose weights stay
near their initialisation the angle between ``W`` and ``B`` is that random start: at
``weight_decay=3e-3`` and lr 0.02, after one epoch of Fashion-MNIST (469 updates) 84 and
67 degrees in the two layers above the first of the 784-256-256-10 MLP (72 and 45 at lr
0.05); a decay large enough to close it within an epoch (0.05) costs about 3.5 points of
test accuracy when kept for 20 epochs.  Once :math:`D \approx 0` any decay keeps it there,
so ``align_decay`` :math:`\lambda_a` is added to the decay of ``W`` and ``B`` (layers
``l >= 1``) for the first ``align_steps`` updates only: :math:`D` shrinks by
:math:`(1-\mathrm{lr}(\lambda+\lambda_a))` per step in that phase, then by
:math:`(1-\mathrm{lr}\,\lambda)`.  Still Kolen-Pollack: ``W`` and ``B`` receive the same
update and the same decay at every step.  ``updates`` counts the steps (checkpointed).
``examples/compare_rules.py`` uses ``align_decay=0.05`` for one epoch.

Regularisation and the diagnostics
----------------------------------
:meth:`KolenPollack.regularization` is the decay term :math:`\lambda\theta_l` alone and
:meth:`KolenPollack.error_gradients` the error-driven :math:`\delta_l^\top a_{l-1}` alone;
:mod:`bionp.metrics` compares the latter with backprop by default (at initialisation
the output layer's is backprop's exactly, whatever ``B``).
"""

from __future__ import annotations

import operator

from bionp.rules.feedback_alignment import FeedbackAlignment
from bionp.validation import check_number, check_real

__all__ = ["KolenPollack"]


def _present(B) -> list:
    """The feedback matrices that exist (layers with weights; each of a block's, in order)."""
    return [a for b in B if b is not None
            for a in (b.values() if isinstance(b, dict) else (b,))]


def _decayed(b, params) -> dict:
    """The parameters of a layer that decay with its feedback: all of them for a plain
    layer, the weights with a feedback matrix inside a block (not its batch norms)."""
    return params if not isinstance(b, dict) else {k: v for k, v in params.items() if k in b}


class KolenPollack(FeedbackAlignment):
    """Kolen–Pollack: FA whose feedback ``B`` gets the same update as ``W``, both decaying.

    Parameters
    ----------
    weight_decay : float, default 3e-3
        :math:`\\lambda` (per unit of learning rate) for ``W``/``b`` of layers ``l >= 1``
        and for ``B``.  The tutorial's setting is ``0.2 / batch_size`` with
        ``feedback_optimizer="sgd"`` (:meth:`tutorial`; module docstring).
    feedback_lr : float or None
        Learning rate of ``B``; ``None`` uses the ``lr`` passed to :meth:`update_after_step`
        (the optimiser's current ``lr``) times ``feedback_lr_scale``.
    feedback_lr_scale : float, default 1.0
        Factor on that ``lr`` when ``feedback_lr`` is None.
    align_decay : float >= 0, default 0
        :math:`\\lambda_a`, added to ``weight_decay`` for the first ``align_steps`` updates
        (module docstring, "Alignment phase").
    align_steps : int >= 0, default 0
        Updates of the alignment phase.
    feedback_optimizer : {"mirror", "sgd"}, default ``"mirror"``
        ``"mirror"``: a copy of the training optimiser updates ``B`` (module docstring;
        needs :meth:`after_step` with the optimiser, as the Trainer calls it);
        ``feedback_lr``/``feedback_lr_scale`` then do not apply.  ``"sgd"``: the plain
        step above (the tutorial's).
    init, scale, rng : as for :class:`~bionp.rules.FeedbackAlignment`
    """

    name = "kolen_pollack"

    def __init__(self, weight_decay: float = 3e-3, feedback_lr=None, init="normal", scale=None,
                 rng=None, feedback_lr_scale: float = 1.0, feedback_optimizer: str = "mirror",
                 align_decay: float = 0.0, align_steps: int = 0):
        weight_decay = check_real("weight_decay", weight_decay, low=0)
        align_decay = check_real("align_decay", align_decay, low=0)
        align_steps = check_number("align_steps", align_steps, low=0, integer=True,
                                   hint=" (updates with the extra align_decay)")
        super().__init__(init=init, scale=scale, rng=rng)
        self.weight_decay = weight_decay
        self.align_decay, self.align_steps = align_decay, align_steps
        self.updates = 0
        self._decay_in_use = weight_decay
        self.feedback_lr = (None if feedback_lr is None
                            else check_real("feedback_lr", feedback_lr, low=0, low_open=True))
        self.feedback_lr_scale = check_real("feedback_lr_scale", feedback_lr_scale, low=0,
                                            low_open=True)
        if feedback_optimizer not in ("sgd", "mirror"):
            raise ValueError(
                f"feedback_optimizer must be 'sgd' or 'mirror', got {feedback_optimizer!r}")
        if feedback_optimizer == "mirror" and (feedback_lr is not None or feedback_lr_scale != 1):
            raise ValueError(
                "feedback_lr and feedback_lr_scale set the plain feedback step: pass "
                "feedback_optimizer='sgd' with them (the default 'mirror' steps B with a copy of "
                "the training optimiser, at its lr)")
        self.feedback_optimizer = feedback_optimizer
        self._mirror = None
        self._mirror_state = None
        self._feedback_grads = None

    @classmethod
    def tutorial(cls, batch_size: int = 200, **kwargs) -> "KolenPollack":
        """The Microlearning tutorial's Kolen-Pollack for SGD at ``lr = eta * batch_size / 2``:
        ``weight_decay = 0.2 / batch_size`` and the plain feedback step
        (``feedback_optimizer="sgd"``); other arguments as for the class."""
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        kwargs.setdefault("weight_decay", 0.2 / batch_size)
        kwargs.setdefault("feedback_optimizer", "sgd")
        return cls(**kwargs)

    @property
    def decay(self) -> float:
        """:math:`\\lambda` of the next update: ``weight_decay``, plus ``align_decay`` for the
        first ``align_steps`` updates."""
        return self.weight_decay + (self.align_decay if self.updates < self.align_steps else 0.0)

    def regularization(self, net):
        """The decay :math:`\\lambda\\theta_l` that :meth:`gradients` adds to layers ``l >= 1``
        (``None`` when the decay in use (:attr:`decay`) is 0)."""
        lam = self.decay
        if not lam:
            return None
        # layers with a feedback matrix decay; pooling, flatten and batch norm have none
        B = self.B if self.B is not None else [None] + [True] * (len(net.layers) - 1)
        return [None if b is None else
                {k: v * v.dtype.type(lam) for k, v in _decayed(b, layer.params()).items()}
                for b, layer in zip(B, net.layers)]

    def error_gradients(self, net, x, target, loss_fn) -> list:
        """:math:`\\delta_l^\\top a_{l-1}` (and the bias sums) without the decay; unlike
        :meth:`gradients` it leaves the feedback update of the next step alone."""
        return super().gradients(net, x, target, loss_fn)

    def gradients(self, net, x, target, loss_fn) -> list:
        raw = super().gradients(net, x, target, loss_fn)
        # layers with a feedback matrix (weights W); pooling, flatten, batch norm have none
        # (B, its update) in the order of _present(self.B)
        self._feedback_grads = [(b, g[k]) for B, g in zip(self.B, raw) if B is not None
                                for k, b in (B.items() if isinstance(B, dict) else
                                             (("W", B),))]
        lam = self._decay_in_use = self.decay
        out = []
        for l in range(len(raw)):
            if self.B[l] is None:
                out.append(raw[l])
                continue
            p = _decayed(self.B[l], net.layers[l].params())
            out.append({k: g + p[k] * p[k].dtype.type(lam) if lam and k in p else g.copy()
                        for k, g in raw[l].items()})
        return out

    def step_feedback(self, lr) -> None:
        """Apply :math:`B_l \\leftarrow B_l - \\mathrm{lr}(A_l + \\lambda B_l)` with the update
        stored by the last :meth:`gradients` call (once; later calls do nothing)."""
        if self._feedback_grads is None:
            return
        if self.feedback_lr is not None:
            lr = self.feedback_lr
        else:
            lr = float(lr) * self.feedback_lr_scale
        lam = self._decay_in_use
        for B, g in self._feedback_grads:
            if lam:
                B *= B.dtype.type(1.0 - lr * lam)
            B -= g * B.dtype.type(lr)
        self._feedback_grads = None
        self.updates += 1

    def update_after_step(self, net, grads, lr) -> None:
        """Update the feedback matrices (call after the optimiser step)."""
        if self.feedback_optimizer == "mirror":
            raise ValueError("feedback_optimizer='mirror' updates B with a copy of the training "
                             "optimiser: call after_step(net, optimizer) (the Trainer does)")
        self.step_feedback(lr)

    def after_step(self, net, optimizer) -> None:
        """Update the feedback matrices after ``optimizer`` stepped the network."""
        if self.feedback_optimizer != "mirror":
            return super().after_step(net, optimizer)
        if self._feedback_grads is None:
            return
        mirror = self._mirror
        if mirror is None or type(mirror) is not type(optimizer) or any(
                p["W"] is not B for p, B in zip(mirror.params, _present(self.B))):
            try:
                mirror = type(optimizer)([{"W": B} for B in _present(self.B)],
                                         **optimizer.hyperparameters())
            except (AttributeError, TypeError) as exc:
                raise TypeError(
                    f"feedback_optimizer='mirror' needs a bionp optimiser that can be rebuilt from "
                    f"its hyperparameters(); got {type(optimizer).__name__} ({exc})") from None
            saved = self._mirror_state
            if saved is not None and saved.get("name") == type(mirror).__name__:
                mirror.load_state_dict(saved)
            self._mirror, self._mirror_state = mirror, None
        mirror.lr = optimizer.lr  # follows a schedule
        lam = self._decay_in_use
        grads = []
        for B, g in self._feedback_grads:
            if lam:
                g = g + B * B.dtype.type(lam)
            grads.append({"W": g})
        mirror.step(grads)
        self._feedback_grads = None
        self.updates += 1

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["updates"] = self.updates
        if self._mirror is not None:
            state["feedback_optimizer_state"] = self._mirror.state_dict()
        elif self._mirror_state is not None:
            state["feedback_optimizer_state"] = self._mirror_state
        return state

    def load_state_dict(self, state: dict) -> None:
        updates = state.get("updates", 0)
        try:
            ok = not isinstance(updates, bool) and operator.index(updates) >= 0
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"state 'updates' must be an int >= 0, got {updates!r}; nothing was "
                             "changed")
        updates = operator.index(updates)
        super().load_state_dict(state)
        self.updates = updates
        # rebuilt on the next step around the restored B, with this momentum/moments state
        self._mirror = None
        self._mirror_state = state.get("feedback_optimizer_state")

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(weight_decay=self.weight_decay, feedback_lr=self.feedback_lr,
                   feedback_lr_scale=self.feedback_lr_scale,
                   feedback_optimizer=self.feedback_optimizer, align_decay=self.align_decay,
                   align_steps=self.align_steps)
        return cfg
