"""Keras as the reference for our backbones: random statistics, files, errors."""

import os

import h5py
import numpy as np
import pytest

os.environ.setdefault('KERAS_BACKEND', 'jax')
keras = pytest.importorskip('keras')
legacy_h5 = pytest.importorskip('keras.src.legacy.saving.legacy_h5_format')


def randomise_batchnorm(model, seed: int = 0) -> None:
  """Random BN weights and statistics, so a wrong mapping cannot hide behind 0/1."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      shapes = [w.shape for w in layer.get_weights()]
      values = {'gamma': lambda s: rng.uniform(0.5, 1.5, s),
                'beta': lambda s: rng.normal(0, 0.1, s),
                'moving_mean': lambda s: rng.normal(0, 0.1, s),
                'moving_variance': lambda s: rng.uniform(0.5, 1.5, s)}
      names = [w.name.split('/')[-1].split(':')[0] for w in layer.weights]
      layer.set_weights([values[name](shape) for name, shape in zip(names, shapes)])


def save_legacy_h5(model, path):
  """Saves weights in the layout ``keras.applications`` downloads."""
  with h5py.File(path, 'w') as file:
    legacy_h5.save_weights_to_hdf5_group(file, model)
  return path


def relative_error(ours, expected) -> float:
  expected = np.asarray(expected)
  return float(np.max(np.abs(np.asarray(ours) - expected)) / np.max(np.abs(expected)))
