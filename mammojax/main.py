"""Entry point: ``python -m mammojax.main --config=configs/finetune.py --workdir=DIR``.

Modes: train (default; resumes when the workdir holds the same run), evaluate
(re-score a finished run), predict (score a folder of images).
"""

import logging as std_logging
import sys

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from mammojax import classical, predict, runtime, train, workdir as workdir_lib
from mammojax.data import datasets

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file (configs/*.py[:arg]).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Run folder: checkpoints, metrics, predictions, summary.')
flags.DEFINE_enum('mode', 'train', ['train', 'evaluate', 'predict'], 'What to do.')
flags.DEFINE_string('input', None, 'predict: folder of images to score.')
flags.DEFINE_string('output', None, 'predict: CSV to write (default WORKDIR/predict.csv).')
flags.mark_flags_as_required(['config', 'workdir'])


class _QuietLibraries:
  """Drops INFO chatter of Orbax (dozens of lines per save); warnings pass."""

  def filter(self, record) -> bool:
    return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname


def _setup_runtime() -> None:
  logging.set_verbosity(logging.INFO)
  logging.get_absl_logger().addFilter(_QuietLibraries())
  runtime.enable_compilation_cache(str(datasets.default_cache_root() / 'jax_cache'))


def main(argv):
  del argv
  _setup_runtime()
  logging.info('JAX devices: %s', jax.devices())
  try:
    if FLAGS.mode == 'train' and FLAGS.config.classical:
      classical.fit_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif FLAGS.mode == 'train':
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif FLAGS.mode == 'evaluate':
      train.evaluate(FLAGS.config, FLAGS.workdir)
    else:
      if not FLAGS.input:
        raise ValueError('--mode=predict needs --input=FOLDER of images.')
      predict.predict_folder(FLAGS.config, FLAGS.workdir, FLAGS.input,
                             FLAGS.output or f'{FLAGS.workdir}/predict.csv')
  except (ValueError, FileNotFoundError, workdir_lib.WorkdirConflict) as error:
    # A user error: say what is wrong and how to fix it, without a traceback.
    print(f'mammojax: error: {error}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
