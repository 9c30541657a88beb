"""Mixed precision: float32 parameters, the forward and backward pass in ``config.dtype``.

Flax layers keep their parameters in ``param_dtype`` (float32 here) and
compute in their ``dtype``: the kernel, the input and, for BatchNorm, the
statistics are cast to it inside the layer. The steps set that ``dtype`` on
every layer of the merged model (``set_compute_dtype``), so the optimizer,
its moments, the parameters it updates and the gradients stay float32 (the
gradient of a cast is a cast back). BatchNorm still reduces its batch
statistics in float32 and updates its float32 running averages from them.
Losses are computed on float32 outputs.
"""

from flax import nnx
import jax.numpy as jnp

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name: str):
  """The jnp dtype of ``config.dtype``; a clear error for anything else."""
  if name not in DTYPES:
    raise ValueError(f'Unknown config.dtype {name!r}; valid choices: {sorted(DTYPES)} '
                     '(bfloat16 computes in bfloat16 with float32 parameters).')
  return DTYPES[name]


def set_compute_dtype(model: nnx.Module, name: str) -> nnx.Module:
  """Makes every Flax layer of ``model`` compute in ``name`` (float32: left as built)."""
  dtype = compute_dtype(name)
  if dtype != jnp.float32:
    for _, module in nnx.iter_modules(model):
      if hasattr(module, 'dtype') and hasattr(module, 'param_dtype'):
        module.dtype = dtype
  return model
