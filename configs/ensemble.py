"""An ensemble of finished runs, fitted on their validation predictions.

Command:
  python -m mammojax.main --config=configs/ensemble.py --workdir=/tmp/ensemble \
    --mode=ensemble --config.ensemble.members=/tmp/run_a,/tmp/run_b,/tmp/run_c

Reads each member's predictions_val.csv and predictions_test.csv (never a live
model), fits logistic stacking (or gradient boosting, or a plain mean) on the
members' validation probabilities, scores the test set, and writes the same
files as a run (predictions, metrics.csv, summary.json with the best single
member beside the ensemble, report.md, plots/). Members must share the data
split (same seed and data settings).
Expected on 2 CPU cores: seconds. Measured on the synthetic set with the four
runs of configs/sweep_finetune.py as members (best single member by
validation AUC: test AUC 0.970, accuracy 0.914): stacking test AUC 0.978,
accuracy 0.914; mean 0.979, 0.938; gradient boosting 0.969, 0.871.

Arguments: gradient_boosting or mean choose the method (default stacking).
"""

import ml_collections

from mammojax import defaults

METHODS = ('stacking', 'gradient_boosting', 'mean')


def get_config(arg: str | None = None):
  args = set((arg or '').split(','))
  config = defaults.runner_config('ensemble')
  config.ensemble = ml_collections.ConfigDict(dict(
      members='',  # comma-separated workdirs of finished runs
      method=next((m for m in METHODS if m in args), 'stacking')))
  return config
