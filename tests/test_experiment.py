"""bionp.experiment: named random streams of an experiment."""

import numpy as np
import pytest

import bionp as bnp
from bionp import experiment


def test_named_streams_are_reproducible_and_independent():
    a = bnp.asnumpy(experiment.stream(12345, "init").random(1000, dtype="float64"))
    again = bnp.asnumpy(experiment.stream(12345, "init").random(1000, dtype="float64"))
    np.testing.assert_array_equal(a, again)  # a fresh generator per call, same numbers
    others = [bnp.asnumpy(experiment.stream(s, n).random(1000, dtype="float64"))
              for s, n in [(12345, "batches"), (12345, "test-images"), (12346, "init")]]
    plain = bnp.asnumpy(bnp.random.Generator(12345).random(1000, dtype="float64"))
    for b in others + [plain]:
        assert not np.array_equal(a, b)
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.15  # 1000 pairs: |r| < 0.15 at ~4.7 sd


@pytest.mark.parametrize("bad", ["", None, 3])
def test_stream_name_must_be_a_nonempty_string(bad):
    with pytest.raises(ValueError, match="stream name"):
        experiment.stream(0, bad)
