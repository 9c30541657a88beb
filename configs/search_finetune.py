"""Hyperparameter search (Optuna) over a fine-tuning run's config fields.

Command:
  python -m mammojax.main --config=configs/search_finetune.py --workdir=/tmp/search

Searches learning rate, unfrozen blocks, augmentation, loss, image size and
breast masking (search.space; TPE sampler, median pruner on each epoch's
validation AUC after search.warmup_epochs). Each trial is a run in
/tmp/search/trial_NNN/; the study is /tmp/search/study.db, so re-running (or
raising --config.search.n_trials) continues it; search.json lists every trial
and the best parameters.
Expected on 2 CPU cores: 12 trials, each a main job (~1.5–3 min) unless the
pruner stops it early, so at most ~35 min (not measured end to end here; the
smoke study of 3 + 2 trials runs in the tests). Expect a best validation AUC
around the main job's (0.93–0.97 over the sweep's settings).

Arguments: smoke (3 trials of smoke runs, seconds each, for the tests).
"""

import pathlib

import ml_collections

from mammojax import defaults

SPACE = ';'.join([
    'phases.finetune.learning_rate=log:1e-3:5e-2',
    'phases.finetune.unfreeze=cat:2,3,all',
    'data.augmentation=cat:none,flip_hv,flip_brightness',
    'train.loss=cat:cross_entropy,focal',
    'data.patch_size=cat:48,64',
    'data.preprocess.breast_mask=cat:false,true',
])


def get_config(arg: str | None = None):
  args = set((arg or '').split(','))
  config = defaults.runner_config('search')
  config.search = ml_collections.ConfigDict(dict(
      configs_dir=str(pathlib.Path(__file__).resolve().parent),
      strategy='finetune',  # the config file each trial starts from
      config_arg='smoke' if 'smoke' in args else '',
      n_trials=3 if 'smoke' in args else 12,
      warmup_epochs=1 if 'smoke' in args else 4,  # epochs before pruning may stop a trial
      space=SPACE))
  return config
