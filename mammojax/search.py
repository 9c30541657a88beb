"""Hyperparameter search with Optuna over config fields, resumable from its workdir.

The search space is a string of ``field=kind:values`` entries separated by
``;``, e.g. ``phases.finetune.learning_rate=log:1e-4:1e-1;
phases.finetune.unfreeze=cat:2,4,all;data.augmentation=cat:none,flip_hv``.
Kinds: ``log`` (float, log scale), ``float``, ``int`` (low:high) and ``cat``
(choices, converted to the field's type). Each trial is an ordinary run in
``trial_NNN/``; its validation AUC is reported after every epoch so the
median pruner stops poor trials early. The study lives in
``WORKDIR/study.db`` (SQLite): re-running continues it up to
``search.n_trials`` finished trials.
"""

import logging
import pathlib

import ml_collections
import optuna

from mammojax import sweep, workdir as workdir_lib

KINDS = ('log', 'float', 'int', 'cat')


def parse_space(text: str) -> dict[str, tuple[str, list[str]]]:
  """{field: (kind, values)} from 'field=kind:a:b;field=cat:x,y'."""
  space = {}
  for entry in (e.strip() for e in text.split(';') if e.strip()):
    field, _, spec = entry.partition('=')
    kind, _, values = spec.partition(':')
    if kind not in KINDS or not values:
      raise ValueError(f'search.space entry {entry!r}: write field=kind:values with kind one of '
                       f'{KINDS} (e.g. phases.finetune.learning_rate=log:1e-4:1e-1).')
    split = values.split(',') if kind == 'cat' else values.split(':')
    if kind != 'cat' and len(split) != 2:
      raise ValueError(f'search.space entry {entry!r}: {kind} takes low:high.')
    space[field.strip()] = (kind, split)
  if not space:
    raise ValueError('search.space is empty; e.g. phases.finetune.learning_rate=log:1e-4:1e-1.')
  return space


def _typed(current, text: str):
  """``text`` converted to the type of the config field's current value."""
  if isinstance(current, bool):
    if text.lower() not in ('true', 'false'):
      raise ValueError(f'{text!r} is not a boolean (true/false).')
    return text.lower() == 'true'
  return type(current)(text)


def _field(config, field: str):
  """(the ConfigDict holding ``field``, its last key); ValueError for unknown fields."""
  *parents, last = field.split('.')
  node = config
  for name in parents:
    node = node[name] if name in node else None
    if node is None:
      break
  if node is None or last not in node:
    raise ValueError(f'search.space names {field!r}, which the trial config does not have.')
  return node, last


def suggest(trial: optuna.Trial, config, space: dict) -> dict:
  """Sets the trial's values into ``config``; returns them."""
  values = {}
  for field, (kind, args) in space.items():
    node, key = _field(config, field)
    if kind == 'cat':
      value = _typed(node[key], trial.suggest_categorical(field, args))
    elif kind == 'int':
      value = trial.suggest_int(field, int(args[0]), int(args[1]))
    else:
      value = trial.suggest_float(field, float(args[0]), float(args[1]), log=kind == 'log')
    node[key] = value
    values[field] = value
  return values


def check_space(search_config) -> dict:
  """The parsed space, every field checked against the trials' config (before any trial)."""
  settings = search_config.search
  space = parse_space(settings.space)
  base = sweep.load_config_file(pathlib.Path(settings.configs_dir) / f'{settings.strategy}.py',
                                settings.config_arg)
  for field in space:
    _field(base, field)
  return space


def open_study(workdir: pathlib.Path, seed: int, warmup_epochs: int) -> optuna.Study:
  return optuna.create_study(
      study_name='search', storage=f'sqlite:///{workdir / "study.db"}', load_if_exists=True,
      direction='maximize', sampler=optuna.samplers.TPESampler(seed=seed),
      pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup_epochs))


def _finished(study: optuna.Study) -> int:
  done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
  return len([t for t in study.trials if t.state in done])


def run_search(search_config, workdir, train_fn) -> optuna.Study:
  """Runs trials until ``search.n_trials`` have finished (completed or pruned).

  ``train_fn(config, workdir, on_epoch=...) -> summary`` trains one trial.
  """
  # Raising n_trials continues the same study: it is not part of the run's identity.
  identity = ml_collections.ConfigDict(search_config.to_dict())
  del identity.search['n_trials']
  workdir = workdir_lib.prepare(workdir, identity)
  settings = search_config.search
  space = check_space(search_config)
  base_path = pathlib.Path(settings.configs_dir) / f'{settings.strategy}.py'
  study = open_study(workdir, search_config.seed, settings.warmup_epochs)

  def objective(trial: optuna.Trial) -> float:
    config = sweep.load_config_file(base_path, settings.config_arg)
    config.seed = search_config.seed
    suggest(trial, config, space)

    def report(progress):
      trial.report(progress.history[-1]['val_auc'], progress.global_epoch)
      if trial.should_prune():
        raise optuna.TrialPruned(f'pruned at epoch {progress.global_epoch}')

    summary = train_fn(config, workdir / f'trial_{trial.number:03d}', on_epoch=report)
    return summary['best_val_auc']

  remaining = settings.n_trials - _finished(study)
  if remaining > 0:
    study.optimize(objective, n_trials=remaining, catch=(ValueError,))
  best = study.best_trial
  workdir_lib.write_json(workdir / 'search.json', {
      'best_trial': best.number, 'best_val_auc': best.value, 'best_params': best.params,
      'trials': [{'number': t.number, 'state': t.state.name, 'value': t.value,
                  'params': t.params} for t in study.trials]})
  logging.info('Search: %d trials finished; best trial %d, val AUC %.4f, %s', _finished(study),
               best.number, best.value, best.params)
  return study
