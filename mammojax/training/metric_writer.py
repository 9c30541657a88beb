"""Where epoch metrics go: metrics.csv, TensorBoard events and the console.

``metrics.csv`` is rewritten from the checkpointed history after every epoch,
so a resumed run never holds duplicate or orphan rows.
"""

import csv
import logging
import pathlib

import jax
from tensorboardX import SummaryWriter


def _format_duration(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  return f'{minutes}m{seconds:02d}s'


class MetricWriter:
  """Writes one row per epoch (process 0 only)."""

  def __init__(self, workdir: pathlib.Path, console_keys=('val_auc', 'val_accuracy')):
    self.enabled = jax.process_index() == 0
    self.console_keys = console_keys  # validation metrics shown on the epoch line
    self.csv_path = workdir / 'metrics.csv'
    self.tensorboard = SummaryWriter(str(workdir / 'tensorboard')) if self.enabled else None

  def write_epoch(self, history: list[dict], eta_seconds: float) -> None:
    if not self.enabled:
      return
    row = history[-1]
    self._rewrite_csv(history)
    for key, value in row.items():
      if isinstance(value, (int, float)) and key not in ('epoch', 'epoch_in_phase'):
        self.tensorboard.add_scalar(key, value, row['epoch'])
    self.tensorboard.flush()
    shown = ' '.join(f'{key} {row[key]:.4f}' for key in self.console_keys)
    logging.info('phase %s epoch %d/%d (%d) loss %.4f val_loss %.4f %s %.0f img/s ETA %s',
                 row['phase'], row['epoch_in_phase'], row['phase_epochs'], row['epoch'],
                 row['train_loss'], row['val_loss'], shown, row['images_per_second'],
                 _format_duration(eta_seconds))

  def _rewrite_csv(self, history: list[dict]) -> None:
    scratch = self.csv_path.with_suffix('.tmp')
    with open(scratch, 'w', newline='') as file:
      writer = csv.DictWriter(file, fieldnames=list(history[0]))
      writer.writeheader()
      writer.writerows(history)
    scratch.replace(self.csv_path)

  def close(self) -> None:
    if self.tensorboard is not None:
      self.tensorboard.close()
