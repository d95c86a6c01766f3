"""Studies: experiments that train several models with the Trainer and compare them."""

from bionp.studies.comparison import (
    Comparison,
    ModelConfig,
    TuningResult,
    compare_models,
    hyperparameter_tuning,
    load_dataset,
)
