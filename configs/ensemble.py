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
Expected on 2 CPU cores: seconds; on the synthetic set, stacking three main-job
runs scores at least the best member's test AUC (≈ 0.96).

Arguments: gradient_boosting or mean choose the method (default stacking).
"""

import ml_collections

METHODS = ('stacking', 'gradient_boosting', 'mean')


def get_config(arg: str | None = None):
  args = set((arg or '').split(','))
  config = ml_collections.ConfigDict()
  config.task = 'ensemble'
  config.seed = 0
  config.overwrite = False
  config.ensemble = ml_collections.ConfigDict(dict(
      members='',  # comma-separated workdirs of finished runs
      method=next((m for m in METHODS if m in args), 'stacking')))
  return config
