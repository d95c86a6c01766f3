"""examples/compare_rules.py with the sign-symmetry and weight-mirror rules: the W-B angle
and norm ratio per layer at epoch 0 and after each epoch, and their figure."""

import json
import math

import numpy as np

import pytest

from tests._examples import load_example


def test_compare_rules_accepts_the_feedback_family(tmp_path):
    ex = load_example("compare_rules")
    runs = ex.main(["--epochs", "1", "--data", "fashion-mnist-small", "--subset", "300",
                    "--hidden", "32", "16", "--align-samples", "100", "--batch-size", "100",
                    "--rules", "usf", "brsf", "frsf", "weight_mirror", "--wm-warmup", "600",
                    "--sf-scale", "xavier", "--quiet", "--out", str(tmp_path)])
    assert set(runs) == {"usf", "brsf", "frsf", "weight_mirror"}
    for name, run in runs.items():
        ang, ratio = run["layer_alignment"], run["weight_ratio"]
        assert len(ang) == len(ratio) == 2 and len(ang[0]) == 3   # epochs 0, 1; three layers
        assert math.isnan(ang[0][0]) and all(0 <= a < 90 for a in ang[1][1:]), (name, ang)
    # the weight mirror has mirrored W before training (600 warm-up steps at decay 0.02:
    # e^-12 of the random start is left)
    assert max(runs["weight_mirror"]["layer_alignment"][0][1:]) < 12
    # xavier-scaled signs: ||B|| / ||W|| is not 1 (the default 'norm' would make it 1)
    assert all(abs(r - 1) > 0.05 for r in runs["usf"]["weight_ratio"][0][1:])
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["config"]["sf_scale"] == "xavier"
    assert (tmp_path / "feedback_angle.png").stat().st_size > 0


def test_per_rule_defaults():
    """compare_rules' per-rule choices: uSF at lr 0.03 with SGD unless --lr or --usf-lr says
    otherwise (the 20-epoch runs of its docstring), the perturbation rules at a tenth, the
    weight mirror's schedule; --sf-scale sets the three sign-symmetry rules."""
    ex = load_example("compare_rules")
    lr = {n: ex.base_learning_rate(n, ex.parse_args([]))
          for n in ("backprop", "usf", "brsf", "frsf", "node_perturbation")}
    assert lr == {"backprop": 0.02, "usf": 0.03, "brsf": 0.02, "frsf": 0.02,
                  "node_perturbation": 0.002}
    assert ex.base_learning_rate("usf", ex.parse_args(["--lr", "0.01"])) == 0.01
    assert ex.base_learning_rate("usf", ex.parse_args(["--usf-lr", "0.05"])) == 0.05
    assert ex.base_learning_rate("usf", ex.parse_args(["--optimizer", "adam"])) == 1e-3
    args = ex.parse_args([])
    assert [ex.make_rule(n, 0, args).scale for n in ("usf", "brsf", "frsf")] == ["norm"] * 3
    args = ex.parse_args(["--sf-scale", "0.5"])
    assert [ex.make_rule(n, 0, args).scale for n in ("usf", "brsf", "frsf")] == [0.5] * 3
    wm = ex.make_rule("weight_mirror", 0, ex.parse_args([]))
    assert (wm.mirror_every, wm.mirror_batch_size, wm.decay, wm.warmup_steps) == (4, 192, 0.02,
                                                                                  125)


def test_bad_scale_is_refused(tmp_path):
    ex = load_example("compare_rules")
    with pytest.raises(ValueError, match="scale must be one of"):
        ex.main(["--epochs", "1", "--data", "fashion-mnist-small", "--subset", "100",
                 "--hidden", "8", "--rules", "usf", "--sf-scale", "sideways", "--quiet",
                 "--out", str(tmp_path)])


def test_feedback_family_trains_draws_and_redraws(tmp_path):
    ex = load_example("feedback_family")
    common = ["--data", "fashion-mnist-small", "--subset", "300", "--hidden", "24", "16",
              "--align-samples", "100", "--batch-size", "100", "--quiet"]
    summary = ex.main(["--epochs", "2", "--rules", "feedback_alignment", "kolen_pollack",
                       "weight_mirror", "--kp-align-steps", "6", "--kp-align-decay", "0.5",
                       *common,
                       "--out", str(tmp_path / "a")])
    assert set(summary) == {"feedback_alignment", "kolen_pollack", "weight_mirror"}
    for name, s in summary.items():
        assert s["epochs"] == 2 and s["best_test_accuracy"] >= s["final_test_accuracy"] > 0
        assert len(s["wb_angle"]) == 3 and len(s["wb_angle"][0]) == 3   # epochs 0-2, 3 layers
        assert len(s["update_angle"]) == 3
    # FA's B stays where it was drawn; the mirror has mirrored W before training (KP's phase
    # is tested in tests/test_kolen_pollack_align.py: this net learns too little in 6 updates
    # for its W - B angle to say anything)
    fa = summary["feedback_alignment"]["wb_angle"]
    assert all(abs(fa[2][l] - fa[0][l]) < 3 for l in (1, 2))
    assert max(summary["weight_mirror"]["wb_angle"][0][1:]) < 12
    doc = json.loads((tmp_path / "a" / "feedback_family.json").read_text())
    assert doc["weight_mirror"]["epochs"] == 2
    config = json.loads((tmp_path / "a" / "results.json").read_text())["config"]
    assert (config["kp_align_decay"], config["kp_align_steps"]) == (0.5, 6)
    assert (tmp_path / "a" / "feedback_family.png").stat().st_size > 0
    again = ex.main(["--from-results", str(tmp_path / "a"), "--out", str(tmp_path / "b")])
    assert set(again) == set(summary)
    for name, s in summary.items():   # results.json keeps 12 significant digits
        for key in ("final_test_accuracy", "best_test_accuracy", "epochs"):
            assert again[name][key] == s[key]
        for key in ("wb_angle", "update_angle"):
            np.testing.assert_allclose(np.array(again[name][key], dtype=float),
                                       np.array(s[key], dtype=float), rtol=1e-9)
    with pytest.raises(FileNotFoundError, match="no results.json in"):
        ex.main(["--from-results", str(tmp_path / "nothing"), "--out", str(tmp_path / "c")])
    with pytest.raises(ValueError, match="training options"):
        ex.main(["--from-results", str(tmp_path / "a"), "--epochs", "3"])


def test_compare_rules_schedules_and_bad_values(tmp_path):
    ex = load_example("compare_rules")
    args = ex.parse_args([])
    assert (args.hidden, args.lr, args.weight_decay, args.schedule, args.nesterov) == (
        [256, 256], None, 5e-4, "cosine-step", True)
    assert ex.parse_args(["--no-schedule"]).schedule == "constant"
    lrs = {}
    for schedule in ("cosine", "cosine-step", "constant"):
        seen = []
        ex_runs = ex.main(["--epochs", "2", "--data", "fashion-mnist-small", "--subset", "200",
                           "--hidden", "8", "--rules", "backprop", "--batch-size", "100",
                           "--align-samples", "50", "--schedule", schedule, "--quiet",
                           "--out", str(tmp_path / schedule)])
        lrs[schedule] = ex_runs["backprop"]["test_accuracy"]
        seen.append(schedule)
    # the per-update cosine decays inside an epoch, the per-epoch one does not: different runs
    assert lrs["cosine"] != lrs["cosine-step"]
    assert ex.cosine_lr(0.02, 0, 10) == 0.02 and ex.cosine_lr(0.02, 10, 10) == pytest.approx(0)
    assert ex.cosine_lr(0.02, 5, 10) == pytest.approx(0.01)
    for bad in (["--schedule", "linear"], ["--wm-noise-dist"]):
        with pytest.raises(SystemExit):
            ex.parse_args(bad)
    for flag, value, match in (("--wm-noise-dist", "gauss", "noise_dist must be one of"),
                               ("--wm-balance", "0.5", "balance must lie in"),
                               ("--kp-align-decay", "-1", "align_decay"),
                               ("--kp-align-steps", "-2", "align_steps must be >= 0")):
        rule = "weight_mirror" if flag.startswith("--wm") else "kolen_pollack"
        with pytest.raises(ValueError, match=match):
            ex.main(["--epochs", "1", "--data", "fashion-mnist-small", "--subset", "100",
                     "--hidden", "8", "--rules", rule, flag, value, "--quiet",
                     "--out", str(tmp_path / "bad")])
