"""Measured peak of one square matmul, in GFLOP/s: the ceiling the networks run under.

    python benchmarks/matmul_peak.py [--size 2048] [--dtype float32|bfloat16] \
        [--framework jax|torch] [--threads 2]

Counts 2 * n**3 flops per (n x n) @ (n x n) product; times windows of products
after a warm-up, blocking on every result, and prints one ``RESULT <json>``
line (``timing.emit``) with the median window's rate.
"""

import argparse
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import timing  # pylint: disable=wrong-import-position


def jax_matmul(a: np.ndarray, b: np.ndarray, dtype: str):
  """(step, sync) for a jitted ``jnp.dot`` at default precision."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
  dot = jax.jit(jnp.dot)
  pending = []  # dispatch is asynchronous: sync waits for every product of the window

  def step():
    pending.append(dot(a, b))

  def sync():
    jax.block_until_ready(pending)
    pending.clear()

  return step, sync, {'precision': 'default', 'device': str(jax.devices()[0])}


def torch_matmul(a: np.ndarray, b: np.ndarray, dtype: str, threads: int):
  """(step, sync) for ``torch.mm`` on the CPU (synchronous, so sync does nothing)."""
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(threads)
  a, b = (torch.from_numpy(m).to(getattr(torch, dtype)) for m in (a, b))

  def step():
    torch.mm(a, b)

  return step, lambda: None, {'threads': threads}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--size', type=int, default=2048)
  parser.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  parser.add_argument('--framework', choices=('jax', 'torch'), default='jax')
  parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
  parser.add_argument('--windows', type=int, default=5)
  parser.add_argument('--steps-per-window', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=3)
  args = parser.parse_args(argv)
  rng = np.random.default_rng(0)
  a, b = (rng.normal(size=(args.size, args.size)).astype(np.float32) for _ in range(2))
  if args.framework == 'jax':
    step, sync, extra = jax_matmul(a, b, args.dtype)
  else:
    step, sync, extra = torch_matmul(a, b, args.dtype, args.threads)
  # One "image" per product: images_per_second is then products per second.
  result = timing.measure_throughput(step, batch_size=1, warmup_steps=args.warmup,
                                     windows=args.windows,
                                     steps_per_window=args.steps_per_window, sync=sync)
  gflop = 2 * args.size**3 / 1e9
  timing.emit({'framework': args.framework, 'kind': 'matmul', 'dtype': args.dtype,
               'size': args.size, 'gflops': result['images_per_second'] * gflop,
               'windows_gflops': [rate * gflop for rate in result['windows']], **extra})


if __name__ == '__main__':
  main()
