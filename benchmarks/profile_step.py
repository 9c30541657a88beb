"""Where our training step's time goes, by kind of XLA operation.

    python benchmarks/profile_step.py --net resnet50 --size 128 --batch 16 [--steps 3] \
        [--framework torch]

Traces ``--steps`` warm training steps (``ours.py``'s step) with
``jax.profiler``, maps every executed HLO instruction of the compiled step to
what it computes (convolution, matrix product, layout copy, reduction,
pooling, elementwise), and prints milliseconds per step and the share of each
kind, then the slowest instructions. ``--framework torch`` does the same for
the PyTorch peer's step (``peers.torch_training_step``, channels-last) with
``torch.profiler``: each operator's own time, by kind (convolution, matrix
product, BatchNorm, pooling, elementwise/other). Side by side they name where
a gap between the two lies (benchmarks/README.md); the absolute times include
the profilers' overhead. Ends with a ``RESULT <json>`` line.
"""

import argparse
import collections
import gzip
import json
import pathlib
import re
import sys
import tempfile

import jax

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# pylint: disable=wrong-import-position
from benchmarks import ours, timing

# First match wins: a fusion holding a convolution is a convolution, whatever else it does.
KINDS = (('convolution', ('convolution(',)), ('matmul', (' dot(',)),
         ('pooling', ('reduce-window(', 'select-and-scatter(')),
         ('reduction', (' reduce(',)), ('layout copy', (' transpose(', ' copy(')))
TORCH_KINDS = (('convolution', ('conv',)), ('matmul', ('aten::mm', 'aten::addmm', 'aten::bmm')),
               ('batchnorm', ('batch_norm',)), ('pooling', ('pool',)))
_INSTRUCTION = re.compile(r'^\s*(?:ROOT )?%?([\w.-]+) = (.*)$', re.M)
_COMPUTATION = re.compile(r'^%?([\w.-]+) [^\n]*\{\n(.*?)\n\}', re.S | re.M)


def instruction_kinds(hlo_text: str) -> dict[str, str]:
  """Kind of every instruction of an optimised HLO module, by instruction name."""
  bodies = dict(_COMPUTATION.findall(hlo_text))
  kinds = {}
  for name, rest in _INSTRUCTION.findall(hlo_text):
    called = re.findall(r'calls=%?([\w.-]+)', rest)
    text = ' ' + rest.split(', metadata=')[0] + ''.join(bodies.get(c, '') for c in called)
    text = text.replace('=', ' ')
    kinds[name] = next((kind for kind, marks in KINDS if any(m in text for m in marks)),
                       'elementwise/other')
  return kinds


def traced_durations(trace_dir: str) -> collections.Counter:
  """Total microseconds per event name in the Perfetto trace under ``trace_dir``."""
  [path] = pathlib.Path(trace_dir).rglob('*.trace.json.gz')
  with gzip.open(path) as file:
    events = json.load(file)
  events = events['traceEvents'] if isinstance(events, dict) else events
  totals = collections.Counter()
  for event in events:
    if event.get('ph') == 'X':
      totals[event['name']] += event.get('dur', 0)
  return totals


def profile(net: str, size: int, batch: int, dtype: str, steps: int) -> dict:
  """ms per step by kind and the slowest instructions of ``steps`` traced steps."""
  step_fn, state, data, scale, mesh = ours.training_setup(net, batch, size, dtype)
  with jax.set_mesh(mesh), tempfile.TemporaryDirectory() as trace_dir:
    kinds = instruction_kinds(step_fn.lower(state, data, scale).compile().as_text())
    for _ in range(2):  # compile and warm up outside the trace
      state, _ = step_fn(state, data, scale)
    jax.block_until_ready(state)
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    for _ in range(steps):
      state, _ = step_fn(state, data, scale)
    jax.block_until_ready(state)
    jax.profiler.stop_trace()
    totals = traced_durations(trace_dir)
  ours_only = {name: us for name, us in totals.items() if name in kinds}
  by_kind = collections.Counter()
  for name, us in ours_only.items():
    by_kind[kinds[name]] += us / steps / 1e3
  slowest = sorted(ours_only.items(), key=lambda item: -item[1])[:10]
  return {'ms_per_step_by_kind': dict(by_kind.most_common()),
          'slowest': [{'instruction': name, 'kind': kinds[name], 'ms': us / steps / 1e3}
                      for name, us in slowest]}


def torch_kind(operator: str) -> str:
  """Kind of a PyTorch operator, by name (``aten::mkldnn_convolution`` → convolution)."""
  return next((kind for kind, marks in TORCH_KINDS if any(m in operator for m in marks)),
              'elementwise/other')


def profile_torch(net: str, size: int, batch: int, dtype: str, steps: int) -> dict:
  """ms per step by kind and the slowest operators of the PyTorch peer's warm steps."""
  import torch  # pylint: disable=import-outside-toplevel
  from benchmarks import peers  # pylint: disable=import-outside-toplevel
  args = peers.parse_args(['--framework', 'torch', '--net', net, '--size', str(size),
                           '--batch', str(batch), '--dtype', dtype, '--channels-last'])
  step, sync, _, _ = peers.torch_training_step(args)
  for _ in range(2):
    step()
  sync()
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as traced:
    for _ in range(steps):
      step()
    sync()
  own_ms = {event.key: event.self_cpu_time_total / steps / 1e3
            for event in traced.key_averages()}
  by_kind = collections.Counter()
  for operator, ms in own_ms.items():
    by_kind[torch_kind(operator)] += ms
  slowest = sorted(own_ms.items(), key=lambda item: -item[1])[:10]
  return {'ms_per_step_by_kind': dict(by_kind.most_common()),
          'slowest': [{'instruction': name, 'kind': torch_kind(name), 'ms': ms}
                      for name, ms in slowest]}


def markdown(result: dict) -> str:
  """The by-kind table, then the slowest instructions."""
  total = sum(result['ms_per_step_by_kind'].values())
  lines = ['| kind | ms per step | share |', '|---|---|---|']
  lines += [f'| {kind} | {ms:.1f} | {100 * ms / total:.0f}% |'
            for kind, ms in result['ms_per_step_by_kind'].items()]
  lines += ['', '| slowest instruction | kind | ms per step |', '|---|---|---|']
  lines += [f'| {s["instruction"]} | {s["kind"]} | {s["ms"]:.1f} |' for s in result['slowest']]
  return '\n'.join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--net', choices=ours.NETS, default='resnet50')
  parser.add_argument('--size', type=int, default=128)
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--framework', choices=('mammojax', 'torch'), default='mammojax')
  args = parser.parse_args(argv)
  measure = profile if args.framework == 'mammojax' else profile_torch
  result = measure(args.net, args.size, args.batch, args.dtype, args.steps)
  print(markdown(result))
  timing.emit({'measure': 'profile', 'framework': args.framework, 'net': args.net,
               'size': args.size, 'batch': args.batch, 'dtype': args.dtype, **result})


if __name__ == '__main__':
  main()
