#!/usr/bin/env bash
# Regenerate the figures shown in the documentation (docs/_static/figures/*.png).
#
# Every figure is made by one of the examples on the bundled data set
# (fashion-mnist-small: 10,000 training / 2,000 test images, no network), NumPy
# backend, float32, seed 0, at the small configuration written on its line below.
# The PNGs are then reduced to a 256-colour palette so that all of them together stay
# a few hundred kB. The numbers quoted next to each figure come from the same runs
# (OUT/results.json) and are printed by this script at the end.
#
#   bash docs/make_figures.sh            # writes results/docs-figures/ and the PNGs
#   ONLY="demo dendritic" bash docs/make_figures.sh   # rerun some examples only
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-results/docs-figures}
FIG=docs/_static/figures
export MPLBACKEND=Agg OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
COMMON=(--data fashion-mnist-small --seed 0 --quiet)
mkdir -p "$FIG" "$OUT"

run() {  # run NAME ARGS...: one example, its output folder OUT/NAME
    local name=$1; shift
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
    echo "# $name: $*"
    /usr/bin/time -f "# $name took %e s" $PY "examples/$name.py" "${COMMON[@]}" --out "$OUT/$name" "$@"
}

run demo --epochs 3
run compare_rules --epochs 3 --hidden 256 \
    --rules backprop feedback_alignment direct_feedback_alignment kolen_pollack usf weight_mirror
run krotov_hopfield --config converged --hidden 100 --epochs 30 --clf-epochs 20 --seeds 1 --grid 5 10
run dendritic --epochs 3 --seeds 1 --models dendritic dendritic_static vanilla
run bio_transformations --epochs 3 --rules backprop
run leaky_tensors --epochs 3
run sweep_rules --epochs 1 --lrs 0.01 0.05 --repeats 2 --scheduler serial
run conv_rules --epochs 5 --rules backprop fa kp --align-samples 200

$PY docs/shrink_figures.py "$FIG" \
    "$OUT/demo/demo.png=getting_started_demo.png" \
    "$OUT/compare_rules/accuracy.png=supervised_accuracy.png" \
    "$OUT/compare_rules/feedback_angle.png=supervised_feedback_angle.png" \
    "$OUT/krotov_hopfield/weights_fashion-mnist-small.png=krotov_hopfield_weights.png" \
    "$OUT/dendritic/curves.png=dendritic_curves.png" \
    "$OUT/dendritic/dendritic_neuron.png=dendritic_neuron.png" \
    "$OUT/bio_transformations/accuracy_backprop.png=bio_accuracy_backprop.png" \
    "$OUT/leaky_tensors/robustness.png=noisy_robustness.png" \
    "$OUT/sweep_rules/rule_comparison.png=sweep_rule_comparison.png" \
    "$OUT/conv_rules/accuracy.png=conv_accuracy.png"

# the numbers quoted in the pages: each run's final test accuracy (%)
$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("*/results.json")):
    runs = json.loads(path.read_text()).get("runs", {})
    final = {k: v["test_accuracy"][-1] for k, v in runs.items()
             if isinstance(v, dict) and v.get("test_accuracy")}
    print(path.parent.name + ":", ", ".join(f"{k} {a:.2f}" for k, a in final.items()))
PYEOF
