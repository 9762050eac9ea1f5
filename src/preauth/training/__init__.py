"""Training: a labels file → a tuned XGBoost model in a versioned bundle, with an honest holdout.

The steps, in the order they touch the data:

1. read the labels (provider labels in ``target``, or the real outcome ``Risk``) and leave out
   unlabeled rows; ``Risk`` is carried along only to *measure*, never to train or tune, unless
   the user asked for ``--target risk``;
2. set a stratified holdout aside before anything else looks at the data (``train --dask`` on
   more than ``--search-rows`` rows: each row's own seeded draw, :mod:`preauth.training.rows`);
3. search hyperparameters with Optuna's TPE sampler, maximising ROC AUC under stratified k-fold
   cross-validation on the training part only, with early stopping and median pruning, under the
   schema's monotone constraints; ``--trials`` counts completed trials; a regularised default is
   cross-validated on the same folds, and shipped unless the tuned parameters beat it on the
   holdout by more than one standard error;
4. fit a calibration map (Platt or isotonic) on the chosen model's out-of-fold predictions and
   choose the decision threshold on the calibrated ones (lowest expected cost with the German
   Credit cost matrix);
5. fit on the whole training part with the chosen parameters and the cross-validated number of
   boosting rounds, evaluate once on the holdout (with bootstrap intervals and baselines on the
   same rows), then refit the shipped booster on every labelled row (``--no-refit``: not).

Bad risk is the positive class (1). ``scale_pos_weight`` starts from negatives/positives, so the
minority class is the one up-weighted (the original pipeline encoded *good* as 1 and up-weighted
the majority by mistake); the search moves it around that ratio but never across 1.

Runs are reproducible: the sampler, the folds, the holdout and XGBoost are all seeded, and
XGBoost runs on a fixed number of threads.
"""

from .config import RISK_MEASURE, TARGET_COLUMN, Target, TrainingConfig
from .data import LabeledData, data_fingerprint, load_labels
from .fit import TrainedModel, TrainingResult, bundle_meta, train, train_from_file
from .search import (
    SearchOutcome,
    base_params,
    class_weight_ratio,
    search,
    split_holdout,
    suggest_params,
    weight_search_range,
)

__all__ = [
    "RISK_MEASURE",
    "TARGET_COLUMN",
    "LabeledData",
    "SearchOutcome",
    "Target",
    "TrainedModel",
    "TrainingConfig",
    "TrainingResult",
    "base_params",
    "bundle_meta",
    "class_weight_ratio",
    "data_fingerprint",
    "load_labels",
    "search",
    "split_holdout",
    "suggest_params",
    "train",
    "train_from_file",
    "weight_search_range",
]
