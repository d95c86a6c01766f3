"""The parity framework: scenarios discovered from bionp/parity/, selection by name or prefix,
the per-group summary and the command line."""

from __future__ import annotations

import json

import pytest

from bionp import parity
from bionp.cli import main

#: Every scenario registered today, by module of bionp/parity/ (the move out of the library
#: modules kept every name).
EXPECTED = {
    "data.batch_iterator", "dendritic.layer", "dendritic.layer_dense",
    "dendritic.layer_probabilistic", "dendritic.sequential_trainer", "feedback_family.brsf",
    "feedback_family.frsf", "feedback_family.usf", "feedback_family.weight_mirror",
    "hebbian.classifier",
    "hebbian.krotov_hopfield", "nn.learnable_noise_dense", "nn.noisy_dense", "optim.adam",
    "plasticity.chain", "random.generator", "rules.backprop", "rules.direct_feedback_alignment",
    "rules.feedback_alignment", "rules.kolen_pollack", "rules.node_perturbation",
    "rules.weight_perturbation", "rules.weight_perturbation_rademacher",
}


def test_every_scenario_is_discovered():
    assert EXPECTED <= set(parity.registered_checks())


@pytest.mark.parametrize("names, expected", [
    (["rules.backprop"], ["rules.backprop"]),
    (["rules.kolen"], ["rules.kolen_pollack"]),
    (["optim"], ["optim.adam"]),
    (["dendritic.layer"], ["dendritic.layer"]),          # an exact name selects only itself
    (["dendritic.layer_"], ["dendritic.layer_dense", "dendritic.layer_probabilistic"]),
    ("nn", ["nn.learnable_noise_dense", "nn.noisy_dense"]),
    (["rules.weight", "optim.adam"], ["optim.adam", "rules.weight_perturbation",
                                      "rules.weight_perturbation_rademacher"]),
])
def test_selection_by_name_or_prefix(names, expected):
    assert list(parity.select_checks(names)) == expected


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"unknown parity check\(s\) \['rulez'\].*rules.backprop"):
        parity.select_checks(["rulez", "rules"])


def _row(check, passed, diff=0.0, backend="strict"):
    return {"check": check, "dtype": "float32", "array": "W0", "reference": "numpy",
            "backend": backend, "max_rel_diff": diff, "tolerance": 0.0, "passed": passed,
            "seconds_reference": 0.0, "seconds_backend": 0.0}


def test_summary_counts_checks_per_group_and_names_failures():
    rows = [_row("rules.a", True), _row("rules.a", True, 1e-9), _row("rules.b", False, 3e-4),
            _row("nn.x", True)]
    summary = {g["group"]: g for g in parity.summarize(rows)}
    assert summary["rules"]["n_checks"] == 2 and summary["rules"]["failed_checks"] == ["rules.b"]
    assert summary["rules"]["arrays"] == 3 and summary["rules"]["failed_arrays"] == 1
    assert summary["rules"]["max_rel_diff"] == 3e-4
    assert summary["nn"]["failed_checks"] == []
    text = parity.format_summary(rows)
    assert "FAIL rules.b" in text and text.count("\n") == 1


def test_cli_prefix_and_summary(capsys):
    assert main(["parity", "--only", "rules.kolen", "--dtype", "float64", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "rules" in out and "1/1" in out and "PASS" in out
    assert "s other" not in out  # no per-array table with --summary
    assert main(["parity", "--only", "rules.kolen", "--dtype", "float64"]) == 0
    assert "rules.kolen_pollack" in capsys.readouterr().out


def test_cli_json_has_summary(capsys):
    assert main(["parity", "--only", "random", "--dtype", "float32", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["summary"][0]["group"] == "random"
    assert {r["check"] for r in report["rows"]} == {"random.generator"}


def test_cli_unknown_name_exit_2(capsys):
    assert main(["parity", "--only", "nothing_here"]) == 2
    assert "unknown parity check" in capsys.readouterr().err
