"""examples/compare_rules.py with the sign-symmetry and weight-mirror rules: the W-B angle
and norm ratio per layer at epoch 0 and after each epoch, and their figure."""

import json
import math

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
    # the weight mirror has mirrored W before training (600 warm-up steps:
    # e^-3 of the random start is left)
    assert max(runs["weight_mirror"]["layer_alignment"][0][1:]) < 12
    # xavier-scaled signs: ||B|| / ||W|| is not 1 (the default 'norm' would make it 1)
    assert all(abs(r - 1) > 0.05 for r in runs["usf"]["weight_ratio"][0][1:])
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["config"]["sf_scale"] == "xavier"
    assert (tmp_path / "feedback_angle.png").stat().st_size > 0


def test_bad_scale_is_refused(tmp_path):
    ex = load_example("compare_rules")
    with pytest.raises(ValueError, match="scale must be one of"):
        ex.main(["--epochs", "1", "--data", "fashion-mnist-small", "--subset", "100",
                 "--hidden", "8", "--rules", "usf", "--sf-scale", "sideways", "--quiet",
                 "--out", str(tmp_path)])
