"""Keras application weight files (``*.h5``) → our Flax backbones, exactly.

Researchers already hold the files ``keras.applications`` downloads
(``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` and friends). Two
layouts are read:

- legacy HDF5 (Keras 1/2 ``save_weights`` and the application files): a group
  per layer, listed in model order in the ``layer_names`` attribute, weights
  named ``conv1_conv/kernel:0`` (Keras 2) or ``conv1_conv/kernel`` (Keras 3);
- Keras 3 ``.weights.h5``: ``layers/<class_name>[_k]/vars/0..n``, positional.

Layers are matched the way Keras itself loads these files: in order of the
layers that carry weights, every shape checked; names are used when the file
and the model agree on them (so a file with its top still loads, its extra
top layers ignored). Every weight is checked before any is written: a wrong
file changes nothing.
"""

import dataclasses
import logging
import os
import re

from flax import nnx
import h5py
import jax.numpy as jnp
import numpy as np

_BN_NAMES = ('gamma', 'beta', 'moving_mean', 'moving_variance')


@dataclasses.dataclass(frozen=True)
class FileLayer:
  """One weighted layer of a file: its name, kind and weights by short name."""
  name: str
  kind: str  # 'conv', 'depthwise', 'bn', 'dense'
  weights: dict


class WeightFileError(ValueError):
  """The file cannot be loaded into the model; the message says where and why."""


def _short_name(weight_name: str) -> str:
  return re.sub(r':\d+$', '', weight_name.split('/')[-1])


def _kind_of(short_names, arrays) -> str:
  if 'depthwise_kernel' in short_names:
    return 'depthwise'
  if 'moving_mean' in short_names:
    return 'bn'
  return 'conv' if arrays[0].ndim == 4 else 'dense'


def _read_legacy(file: h5py.File) -> list[FileLayer]:
  group = file['model_weights'] if 'model_weights' in file else file
  layers = []
  for raw in group.attrs['layer_names']:
    name = raw.decode() if isinstance(raw, bytes) else str(raw)
    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in group[name].attrs.get('weight_names', [])]
    if not names:
      continue
    arrays = [np.asarray(group[name][n]) for n in names]
    short = [_short_name(n) for n in names]
    layers.append(FileLayer(name, _kind_of(short, arrays), dict(zip(short, arrays))))
  return layers


_KERAS3_KINDS = {'conv2d': 'conv', 'depthwise_conv2d': 'depthwise',
                 'batch_normalization': 'bn', 'dense': 'dense'}


def _read_keras3(file: h5py.File) -> list[FileLayer]:
  """Keras 3 names entries by class with a counter in model order."""
  entries = []
  for key, group in file['layers'].items():
    match = re.fullmatch(r'([a-z0-9_]+?)(?:_(\d+))?', key)
    kind = _KERAS3_KINDS.get(match.group(1))
    if kind is None or 'vars' not in group or not len(group['vars']):
      continue
    arrays = [np.asarray(group['vars'][str(i)]) for i in range(len(group['vars']))]
    entries.append((kind, int(match.group(2) or 0), key, arrays))
  layers = []
  for kind, _, key, arrays in sorted(entries, key=lambda e: (e[0], e[1])):
    # Positional: interpreted against the target module in _expected_arrays.
    layers.append(FileLayer(key, kind, {str(i): a for i, a in enumerate(arrays)}))
  return layers


def read_weight_file(path: str | os.PathLike) -> tuple[list[FileLayer], str]:
  """(weighted layers, layout) of a Keras weight file; a clear error otherwise."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise WeightFileError(f'Weight file {path} does not exist.')
  if not h5py.is_hdf5(path):
    raise WeightFileError(f'{path} is not an HDF5 file: give a Keras application '
                          'weights file (*.h5) or a Keras 3 *.weights.h5 file.')
  try:
    with h5py.File(path, 'r') as file:
      if 'layers' in file and 'layer_names' not in file.attrs:
        return _read_keras3(file), 'keras3'
      return _read_legacy(file), 'legacy'
  except (OSError, KeyError) as error:
    raise WeightFileError(f'{path} is damaged or truncated ({error}); download or '
                          'save it again.') from error


def _module_kind(module) -> str:
  if isinstance(module, nnx.BatchNorm):
    return 'bn'
  if isinstance(module, nnx.Linear):
    return 'dense'
  if isinstance(module, nnx.Conv):
    return 'depthwise' if module.feature_group_count > 1 else 'conv'
  raise TypeError(f'keras_layers() returned a {type(module).__name__}; expected '
                  'nnx.Conv, nnx.BatchNorm or nnx.Linear.')


def _targets(module, kind: str) -> list[tuple[str, str]]:
  """(our attribute, Keras short weight name), in Keras' weight order."""
  if kind == 'bn':
    pairs = [('scale', 'gamma'), ('bias', 'beta'), ('mean', 'moving_mean'),
             ('var', 'moving_variance')]
    return [(ours, theirs) for ours, theirs in pairs if getattr(module, ours) is not None]
  kernel = 'depthwise_kernel' if kind == 'depthwise' else 'kernel'
  return [('kernel', kernel)] + ([('bias', 'bias')] if module.bias is not None else [])


def _file_array(layer: FileLayer, position: int, short_name: str):
  if short_name in layer.weights:
    return layer.weights[short_name]
  if short_name == 'depthwise_kernel' and 'kernel' in layer.weights:
    return layer.weights['kernel']  # Keras 3's legacy writer calls it 'kernel'
  return layer.weights.get(str(position))  # Keras 3 .weights.h5: positional


def _convert(array, target_shape, kind: str, attribute: str):
  """Reshapes depthwise kernels; sums RGB first-conv kernels for grayscale input."""
  if kind == 'depthwise' and attribute == 'kernel' and array.ndim == 4:
    array = array.reshape(array.shape[0], array.shape[1], 1, -1)
  if (attribute == 'kernel' and array.ndim == 4 and target_shape[2] == 1
      and array.shape[2] == 3 and kind == 'conv'):
    array = array.sum(axis=2, keepdims=True)  # grayscale: a sum over RGB
  return array


def _is_depthwise_saved_as_conv(kind: str, layer: FileLayer) -> bool:
  """Keras 3's legacy .h5 writer names depthwise kernels 'kernel' (kh, kw, C, 1)."""
  kernel = layer.weights.get('kernel')
  return (kind == 'depthwise' and layer.kind == 'conv' and kernel is not None
          and kernel.shape[-1] == 1)


def _assignments(model_name: str, module, layer: FileLayer, path) -> list:
  kind = _module_kind(module)
  if layer.kind != kind and not _is_depthwise_saved_as_conv(kind, layer):
    raise WeightFileError(f'{path}: layer {layer.name!r} holds {layer.kind} weights where '
                          f'{model_name} expects {kind}; is the file for another network?')
  pairs = []
  for position, (attribute, short_name) in enumerate(_targets(module, kind)):
    variable = getattr(module, attribute)
    array = _file_array(layer, position, short_name)
    if array is None:
      raise WeightFileError(f'{path}: layer {layer.name!r} has no {short_name!r} '
                            f'(found {sorted(layer.weights)}).')
    array = _convert(array, variable.shape, kind, attribute)
    if array.shape != variable.shape:
      raise WeightFileError(
          f'{path}: layer {layer.name!r} weight {short_name!r} has shape {array.shape}, '
          f'{model_name} expects {variable.shape} there; is the file for another '
          'network or input channel count?')
    pairs.append((variable, array))
  return pairs


def _match_layers(ours, theirs, layout: str, path):
  """Pairs (our name, module) with file layers: by name when all agree, else by order."""
  by_name = {layer.name: layer for layer in theirs}
  if layout == 'legacy' and all(name in by_name for name, _ in ours):
    matched = [by_name[name] for name, _ in ours]
    extra = [layer for layer in theirs if layer.name not in {n for n, _ in ours}]
  else:
    queues = {}
    for layer in theirs:
      kind = 'depthwise' if _is_depthwise_saved_as_conv('depthwise', layer) else layer.kind
      queues.setdefault(kind, []).append(layer)
    matched = []
    for name, module in ours:
      queue = queues.get(_module_kind(module), [])
      if not queue:
        raise WeightFileError(f'{path} has fewer {_module_kind(module)} layers than the '
                              f'model: nothing left for {name!r}. Is the file for another '
                              'network?')
      matched.append(queue.pop(0))
    extra = [layer for queue in queues.values() for layer in queue]
  unexpected = [layer.name for layer in extra if layer.kind != 'dense']
  if unexpected:
    raise WeightFileError(f'{path} has {len(unexpected)} weighted layers the model does not '
                          f'(first: {unexpected[0]!r}); is the file for another network?')
  return matched, extra


def load_keras_weights(backbone: nnx.Module, path: str | os.PathLike, *,
                       model_name: str = 'the model') -> None:
  """Copies a Keras weight file into ``backbone`` in place (all or nothing).

  ``backbone.keras_layers()`` lists (Keras layer name, module) in Keras' order.
  Extra dense layers of the file (a classification top) are ignored.
  """
  theirs, layout = read_weight_file(path)
  ours = backbone.keras_layers()
  matched, extra = _match_layers(ours, theirs, layout, path)
  pairs = [pair for (_, module), layer in zip(ours, matched)
           for pair in _assignments(model_name, module, layer, path)]
  for variable, array in pairs:  # every check passed: now write
    variable.set_value(jnp.asarray(array, variable.dtype))
  if extra:
    logging.info('Ignored %d top layers of %s: %s', len(extra), path,
                 ', '.join(layer.name for layer in extra))
  logging.info('Loaded %d layers (%d arrays) from %s into %s.', len(ours), len(pairs), path,
               model_name)
