"""Entry point: ``python -m mammojax.main --config=configs/finetune.py --workdir=DIR``.

The config's ``task`` (classification, segmentation, autoencoder, sweep,
search, ensemble) and ``--mode`` pick the function that runs: train (default;
resumes when the workdir holds the same run), evaluate (re-score a finished
run), predict (score a folder of images), ensemble, report.
"""

import logging as std_logging
import sys

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from mammojax import classical, predict, pretrain, reporting, runtime, search, segment, sweep
from mammojax import train
from mammojax import workdir as workdir_lib
from mammojax.data import datasets
from mammojax.training import preemption

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file (configs/*.py[:arg]).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Run folder: checkpoints, metrics, predictions, summary.')
flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'predict', 'ensemble', 'report'],
                  'What to do: report redraws report.md and plots/ of a run or sweep.')
flags.DEFINE_string('input', None, 'predict: folder of images to score.')
flags.DEFINE_string('output', None, 'predict: CSV to write (default WORKDIR/predict.csv); '
                    'segmentation also writes mask PNGs in masks/ beside it.')
flags.DEFINE_string('coordinator_address', '', 'Multi-host: host:port of process 0 (SLURM and '
                    'TPU pods are detected without it).')
flags.DEFINE_integer('num_processes', 0, 'Multi-host: number of processes.')
flags.DEFINE_integer('process_id', -1, 'Multi-host: this process (0 writes logs and reports).')
flags.mark_flags_as_required(['config', 'workdir'])


class _QuietLibraries:
  """Drops INFO chatter of Orbax (dozens of lines per save); warnings pass."""

  def filter(self, record) -> bool:
    return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname


def _setup_runtime() -> None:
  runtime.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                 FLAGS.process_id)
  logging.set_verbosity(logging.INFO if jax.process_index() == 0 else logging.WARNING)
  logging.get_absl_logger().addFilter(_QuietLibraries())
  runtime.enable_compilation_cache(str(datasets.default_cache_root() / 'jax_cache'))


# task → mode → what runs it.
TASKS = {
    'classification': {'train': train.train_and_evaluate, 'evaluate': train.evaluate,
                       'predict': predict.predict_folder},
    'segmentation': {'train': segment.train_and_evaluate, 'evaluate': segment.evaluate,
                     'predict': segment.predict_folder},
    'autoencoder': {'train': pretrain.train_and_evaluate},
    'sweep': {'train': lambda config, workdir: run_sweep(config, workdir)},
    'search': {'train': lambda config, workdir: search.run_search(config, workdir,
                                                                  train.train_and_evaluate)},
    'ensemble': {'ensemble': reporting.ensemble_run, 'train': reporting.ensemble_run},
}


def run_sweep(config, workdir: str) -> None:
  """Every grid point, then the sweep's report.md and figures."""
  sweep.run_sweep(config, workdir, train.train_and_evaluate)
  if jax.process_index() == 0:
    reporting.write_sweep_report(workdir)


def run(config, workdir: str, mode: str) -> None:
  """Runs ``mode`` of the config's task."""
  if config.task not in TASKS:
    raise ValueError(f'Unknown task {config.task!r}; valid choices: {tuple(TASKS)}.')
  if mode == 'report':
    reporting.report_mode(config, workdir)
    return
  if mode not in TASKS[config.task]:
    raise ValueError(f'--mode={mode} does not apply to a {config.task} run; valid: '
                     f'{tuple(TASKS[config.task]) + ("report",)}.')
  if mode == 'train' and config.task == 'classification' and config.classical:
    classical.fit_and_evaluate(config, workdir)
  elif mode == 'predict':
    if not FLAGS.input:
      raise ValueError('--mode=predict needs --input=FOLDER of images.')
    TASKS[config.task][mode](config, workdir, FLAGS.input,
                             FLAGS.output or f'{workdir}/predict.csv')
  else:
    TASKS[config.task][mode](config, workdir)


def main(argv):
  del argv
  _setup_runtime()
  logging.info('JAX devices: %s', jax.devices())
  try:
    run(FLAGS.config, FLAGS.workdir, FLAGS.mode)
  except preemption.Preempted as stop:
    logging.warning('%s', stop)  # a clean stop: the checkpoint holds everything
    sys.exit(0)
  except (ValueError, FileNotFoundError, workdir_lib.WorkdirConflict) as error:
    # A user error: say what is wrong and how to fix it, without a traceback.
    print(f'mammojax: error: {error}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
