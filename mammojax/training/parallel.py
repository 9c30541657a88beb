"""The device mesh and how arrays are placed on it.

The step always runs under a mesh with a ``data`` axis, even on one device, so
the same code runs on a laptop, a multi-GPU node or a TPU pod.
"""

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np


def create_mesh() -> Mesh:
  """A 1-D mesh over every device of every process, axis name ``data``."""
  return Mesh(np.asarray(jax.devices()), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec('data'))


def put_batch(batch: dict, mesh: Mesh) -> dict:
  """This process's slice of a global batch → global arrays sharded on ``data``."""
  sharding = data_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x),
                      batch)


def put_replicated(tree, mesh: Mesh):
  return jax.device_put(tree, replicated(mesh))


def gather(x: jax.Array) -> np.ndarray:
  """A global array as a numpy array on every process."""
  if jax.process_count() == 1:
    return np.asarray(x)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
