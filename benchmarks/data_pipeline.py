"""Data pipeline throughput against what the default training step consumes.

    python benchmarks/data_pipeline.py [--patients=320] [--out=benchmarks/results]

Measures, on this machine, in one run:
  * cold: records → preprocessed, cached patch arrays (decode, CLAHE, crop,
    resize, normalise; parallel over the cores), in patches/s;
  * cached: the grain training pipeline over cached patches (shuffle,
    augmentation, batching) per augmentation strategy, in patches/s;
  * consumption: images/s of the default config's (configs/finetune.py)
    training step, in its most expensive phase (every block trains);
and prints a markdown table (also written as CSV and markdown under --out)
with the ratio cached / consumption, which must be ≥ 3, then a ``RESULT``
line for ``run.py``.
"""

import argparse
import csv
import pathlib
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import timing  # pylint: disable=wrong-import-position
from configs import finetune  # pylint: disable=wrong-import-position
from mammojax import models  # pylint: disable=wrong-import-position
from mammojax.data import datasets, pipeline  # pylint: disable=wrong-import-position
from mammojax.training import loop, parallel, steps  # pylint: disable=wrong-import-position


def measure_cold_and_cached_build(config, cache_dir: str) -> tuple[dict, datasets.Datasets]:
  """Seconds to build every split's patches from image files, then to reload them.

  The synthetic images are generated (once per machine) before the clock starts:
  a researcher's files already exist, and the build is what is measured.
  """
  datasets.split_records(config.data, seed=config.seed)
  start = time.perf_counter()
  data = datasets.build_datasets(config.data, seed=config.seed, cache_dir=cache_dir)
  cold = time.perf_counter() - start
  start = time.perf_counter()
  datasets.build_datasets(config.data, seed=config.seed, cache_dir=cache_dir)
  reload = time.perf_counter() - start
  count = sum(len(getattr(data, s).images) for s in ('train', 'val', 'test'))
  return {'patches': count, 'cold_per_s': count / cold, 'reload_s': reload}, data


def measure_pipeline(source, *, batch_size: int, augmentation: str, epochs: int = 3) -> float:
  """Median patches/s of whole training epochs through grain (after one warm-up epoch)."""
  rates = []
  for epoch in range(epochs + 1):
    start = time.perf_counter()
    count = sum(len(b['label']) for b in pipeline.train_batches(
        source, global_batch_size=batch_size, seed=0, epoch=epoch, augmentation=augmentation))
    if epoch:
      rates.append(count / (time.perf_counter() - start))
  return statistics.median(rates)


def measure_training_step(config) -> float:
  """Images/s of the default training step, every block trainable (its slowest phase)."""
  model = models.create_classifier(config.model, seed=0, load_pretrained=False)
  graphdef, params, batch_stats = steps.split_model(model)
  phase = loop.resolve_phases(config, params, model.block_names)[-1]
  mesh = parallel.create_mesh()
  state = [loop.make_state(params, batch_stats, phase.tx, mesh)]
  step_fn = steps.jit_train_step(steps.StepConfig(graphdef, phase.frozen_blocks, 0), phase.tx,
                                 mesh)
  size, batch_size = config.data.patch_size, config.data.batch_size
  rng = np.random.default_rng(0)
  batch = {'image': rng.normal(size=(batch_size, size, size, 1)).astype(np.float32),
           'label': rng.integers(0, 2, batch_size).astype(np.int32),
           'weight': np.ones(batch_size, np.float32)}
  scale = jax.device_put(np.float32(1.0), parallel.replicated(mesh))

  def step():
    state[0], _ = step_fn(state[0], device_batch, scale)

  with jax.set_mesh(mesh):
    device_batch = parallel.put_batch(batch, mesh)
    return timing.measure_throughput(step, batch_size=batch_size, windows=3,
                                     steps_per_window=10,
                                     sync=lambda: jax.block_until_ready(state[0]))[
                                         'images_per_second']


def write_table(rows: list[dict], out: pathlib.Path) -> str:
  out.mkdir(parents=True, exist_ok=True)
  with open(out / 'data_pipeline.csv', 'w', newline='') as file:
    writer = csv.DictWriter(file, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  lines = ['| measurement | patches/s | × training step |', '|---|---|---|']
  lines += [f'| {r["measurement"]} | {r["per_second"]:.0f} | {r["ratio"]:.1f} |' for r in rows]
  table = '\n'.join(lines)
  (out / 'data_pipeline.md').write_text(table + '\n')
  return table


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--patients', type=int, default=320)
  parser.add_argument('--out', default=str(REPO / 'benchmarks' / 'results'))
  parser.add_argument('--augmentations', default='flip_hv,flip_brightness,flip_rotate_zoom')
  args = parser.parse_args()
  config = finetune.get_config()
  config.data.synthetic_patients = args.patients
  consumption = measure_training_step(config)
  with tempfile.TemporaryDirectory() as cache_dir:
    build, data = measure_cold_and_cached_build(config, cache_dir)
  source = pipeline.ArraySource(data.train.images, datasets.labels_of(data.train),
                                data.train.masks)
  rows = [{'measurement': 'training step consumes (finetune, all blocks)',
           'per_second': consumption, 'ratio': 1.0},
          {'measurement': f'cold build: decode + CLAHE + crop ({build["patches"]} patches)',
           'per_second': build['cold_per_s'], 'ratio': build['cold_per_s'] / consumption}]
  for augmentation in args.augmentations.split(','):
    rate = measure_pipeline(source, batch_size=config.data.batch_size, augmentation=augmentation)
    rows.append({'measurement': f'cached grain pipeline, augmentation={augmentation}',
                 'per_second': rate, 'ratio': rate / consumption})
  print(f'{jax.device_count()} {jax.devices()[0].platform} device(s); cached reload of '
        f'{build["patches"]} patches: {build["reload_s"]:.2f} s')
  print(write_table(rows, pathlib.Path(args.out)))
  timing.emit({'measure': 'data_pipeline', 'train_patches': len(data.train.images),
               'rows': rows, 'peak_rss_mb': timing.peak_rss_mb()})


if __name__ == '__main__':
  main()
