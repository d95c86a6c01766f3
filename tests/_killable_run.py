"""A small training run that writes a checkpoint after every update and resumes from it.

``python tests/_killable_run.py PATH`` trains (or resumes from ``PATH``) and prints one line
``step N HASH`` per update (``HASH``: SHA-256 of the network's parameters after update N), then
``done HASH``. tests/test_checkpoint_kill.py kills it with SIGKILL at random updates, reruns
it, and compares every line with an uninterrupted run's.
"""

import hashlib
import sys

EPOCHS = 2


def params_hash(net) -> str:
    import bionp as bnp

    h = hashlib.sha256()
    for layer in net.layers:
        for name, value in sorted(layer.params().items()):
            h.update(name.encode())
            h.update(bnp.asnumpy(value).tobytes())
    return h.hexdigest()


def make_trainer(path=None, after_step=None):
    from bionp import data, nn, optim, rules
    from bionp.train import Trainer

    x, y = data.load("fashion-mnist-small", split="train")
    x, y = x[:480], y[:480]
    net = nn.MLP([784, 12, 10], activation="relu", init="he_normal", rng=0)
    rule = rules.KolenPollack(weight_decay=0.01, feedback_optimizer="mirror", rng=1)
    trainer = Trainer(net, rule, optim.Adam(net, lr=2e-3), nn.CrossEntropyLoss(), batch_size=16,
                      rng=2, progress=False, checkpoint=path, checkpoint_every=1 if path else None,
                      after_step=after_step)
    return trainer, x, y


def main(path) -> None:
    def report(trainer):
        print(f"step {trainer.n_steps} {params_hash(trainer.net)}", flush=True)

    trainer, x, y = make_trainer(path, after_step=report)
    trainer.fit(x, y, until_epoch=EPOCHS, resume=True)
    print(f"done {params_hash(trainer.net)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
