"""Where a run stands: phase, epoch, early stopping, plateau, history.

All of it is JSON and goes into every checkpoint's ``meta`` item, so a resumed
run continues with the same early-stopping counters, learning-rate scale, data
position and metric history as if it had never stopped.
"""

import dataclasses
import math

from flax.training import early_stopping
import jax.numpy as jnp
import optax


def new_plateau(phase) -> optax.GradientTransformationExtraArgs:
  """optax's reduce-on-plateau, stepped once per epoch on the validation loss."""
  patience = phase.plateau_patience or 10**9  # 0 means never reduce
  return optax.contrib.reduce_on_plateau(factor=phase.plateau_factor, patience=patience,
                                         accumulation_size=1)


@dataclasses.dataclass
class Progress:
  """Counters of a run. ``global_epoch`` counts finished epochs over all phases."""
  phase_index: int = 0
  epoch_in_phase: int = 0
  global_epoch: int = 0
  batch_in_epoch: int = 0  # > 0: the run was preempted inside this epoch, resume here
  stopped_early: bool = False
  early_stopping: dict = dataclasses.field(default_factory=dict)
  plateau: dict = dataclasses.field(default_factory=dict)
  best_val_metric: float = -math.inf  # the monitored validation metric (higher is better)
  best_epoch: int = -1
  history: list = dataclasses.field(default_factory=list)
  phase_seconds: dict = dataclasses.field(default_factory=dict)

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, value: dict) -> 'Progress':
    return cls(**value)

  def start_phase(self, index: int, phase) -> None:
    """Resets the per-phase counters for phase ``index``."""
    self.phase_index, self.epoch_in_phase, self.stopped_early = index, 0, False
    stopper = early_stopping.EarlyStopping(patience=phase.early_stopping_patience or 10**9)
    self.early_stopping = {'best_metric': float(stopper.best_metric),
                           'patience_count': stopper.patience_count}
    state = new_plateau(phase).init({})
    self.plateau = {k: float(v) for k, v in state._asdict().items()}

  def phase_finished(self, phase) -> bool:
    return self.stopped_early or self.epoch_in_phase >= phase.epochs

  @property
  def lr_scale(self) -> float:
    return self.plateau.get('scale', 1.0)

  def end_epoch(self, phase, val_metrics: dict, monitor: str = 'auc') -> bool:
    """Updates early stopping (on ``val_metrics[monitor]``) and plateau (on val loss).

    Returns True when the monitored validation metric (AUC for classifiers,
    Dice for segmentation) is the best of the run so far.
    """
    self.epoch_in_phase += 1
    self.global_epoch += 1
    value = val_metrics[monitor]
    value = -1.0 if math.isnan(value) else value  # e.g. one-class validation: no signal
    stopper = early_stopping.EarlyStopping(
        patience=phase.early_stopping_patience or 10**9, **self.early_stopping)
    stopper = stopper.update(-value)
    self.early_stopping = {'best_metric': float(stopper.best_metric),
                           'patience_count': int(stopper.patience_count)}
    self.stopped_early = bool(stopper.should_stop)
    plateau = new_plateau(phase)
    initial = plateau.init({})
    state = initial._replace(**{k: jnp.asarray(v, getattr(initial, k).dtype)
                                for k, v in self.plateau.items()})
    _, state = plateau.update({}, state, value=val_metrics['loss'])
    self.plateau = {k: float(v) for k, v in state._asdict().items()}
    improved = value > self.best_val_metric
    if improved:
      self.best_val_metric, self.best_epoch = value, self.global_epoch
    return improved
