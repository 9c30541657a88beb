"""mammojax's own measurements, one per process: training step, checkpoint, sliding window.

    python benchmarks/ours.py --measure step --net resnet50 --size 128 --batch 16 \
        [--dtype bfloat16] [--windows 5 --steps-per-window 5 --warmup 3]
    python benchmarks/ours.py --measure checkpoint --net small_cnn --size 64 --batch 32
    python benchmarks/ours.py --measure sliding_window

``step`` times the jitted, donated training step the runs use
(``steps.jit_train_step``, or the U-Net's ``segmentation_steps.jit_train_step``)
with Adam on every parameter, and reads its FLOPs from XLA's cost analysis of
the compiled step. ``checkpoint`` times an asynchronous Orbax save of that
step's state: how long training is blocked, and how long the write takes in
the background. ``sliding_window`` times whole-mammogram (1152×896) inference
of the segmentation config's U-Net. Each prints one ``RESULT <json>`` line.
"""

import argparse
import pathlib
import sys
import tempfile
import time

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# pylint: disable=wrong-import-position
from benchmarks import timing
from configs import segmentation
from flax import nnx
from mammojax import defaults, models
from mammojax.models import heads
from mammojax.models.classifier import Classifier
from mammojax.training import checkpoint, loop, optim, parallel, segmentation_steps, steps

NETS = ('small_cnn', 'resnet50', 'densenet121', 'mobilenet', 'inception_v3', 'unet')


def build_model(net: str):
  """The classifier the runs build (3-channel input, rule-of-thumb head), or the U-Net."""
  if net == 'unet':
    model_config = segmentation.get_config().model
    model_config.dropout = 0.0
    return models.create_unet(model_config, seed=0)
  rngs = nnx.Rngs(params=0)
  backbone = models.BACKBONES[net].build(in_channels=3, batchnorm_momentum=0.9, rngs=rngs)
  head = heads.Head(backbone.out_features, 2, num_hidden=1, dropout=0.5, rngs=rngs)
  return Classifier(backbone, head, input_channels=3)


def random_batch(net: str, batch: int, size: int) -> dict:
  rng = np.random.default_rng(0)
  channels = 1 if net == 'unet' else 3
  out = {'image': rng.normal(size=(batch, size, size, channels)).astype(np.float32),
         'weight': np.ones(batch, np.float32)}
  if net == 'unet':
    out['mask'] = (rng.random((batch, size, size, 1)) < 0.5).astype(np.float32)
  else:
    out['label'] = rng.integers(0, 2, batch).astype(np.int32)
  return out


def training_setup(net: str, batch: int, size: int, dtype: str):
  """(jitted step, initial state, device batch, lr scale, mesh) with Adam on everything."""
  model = build_model(net)
  graphdef, params, batch_stats = steps.split_model(model)
  phase = defaults.phase(epochs=1, unfreeze='all', optimizer='adam', learning_rate=1e-4)
  tx = optim.make_optimizer(phase, optim.parameter_labels(params, 0))
  mesh = parallel.create_mesh()
  state = loop.make_state(params, batch_stats, tx, mesh)
  if net == 'unet':
    step_fn = segmentation_steps.jit_train_step(
        segmentation_steps.StepConfig(graphdef, 0, 'bce_dice', dtype), tx, mesh)
  else:
    step_fn = steps.jit_train_step(steps.StepConfig(graphdef, 0, seed=0, dtype=dtype), tx, mesh)
  scale = jax.device_put(np.float32(1.0), parallel.replicated(mesh))
  return step_fn, state, parallel.put_batch(random_batch(net, batch, size), mesh), scale, mesh


def step_flops(step_fn, state, batch, scale) -> float:
  """FLOPs of one compiled training step, as XLA's cost analysis counts them."""
  analysis = step_fn.lower(state, batch, scale).compile().cost_analysis()
  if isinstance(analysis, list):  # older jax: one dict per computation
    analysis = analysis[0]
  return float(analysis.get('flops', float('nan')))


def measure_step(args) -> dict:
  step_fn, state, batch, scale, mesh = training_setup(args.net, args.batch, args.size,
                                                      args.dtype)
  holder = [state]

  def step():
    holder[0], _ = step_fn(holder[0], batch, scale)

  with jax.set_mesh(mesh):
    result = timing.measure_throughput(
        step, batch_size=args.batch, warmup_steps=args.warmup, windows=args.windows,
        steps_per_window=args.steps_per_window, sync=lambda: jax.block_until_ready(holder[0]))
    flops = step_flops(step_fn, holder[0], batch, scale)
  params = sum(x.size for x in jax.tree.leaves(holder[0].params))
  return {**result, 'params': int(params), 'flops_per_image': flops / args.batch}


def measure_checkpoint(args) -> dict:
  """Seconds an async save blocks the caller, and seconds until it is on disk."""
  step_fn, state, batch, scale, mesh = training_setup(args.net, args.batch, args.size,
                                                      args.dtype)
  blocked, written = [], []
  with tempfile.TemporaryDirectory() as workdir, jax.set_mesh(mesh):
    checkpoints = checkpoint.RunCheckpoints(workdir)
    try:
      for index in range(1, args.windows + 1):
        state, _ = step_fn(state, batch, scale)
        jax.block_until_ready(state)
        start = time.perf_counter()
        checkpoints.save(checkpoints.latest, index, state, {'epoch': index})
        blocked.append(time.perf_counter() - start)
        checkpoints.wait()
        written.append(time.perf_counter() - start)
      size = sum(p.stat().st_size for p in pathlib.Path(workdir).rglob('*') if p.is_file())
    finally:
      checkpoints.close()
  return {'save_blocked_seconds': float(np.median(blocked)),
          'save_written_seconds': float(np.median(written)),
          'checkpoint_mb': size / 2**20 / min(args.windows, 2)}


def measure_sliding_window(args) -> dict:
  """Seconds per 1152×896 image through the segmentation config's windows and U-Net."""
  from mammojax import unet_run  # pylint: disable=import-outside-toplevel
  config = segmentation.get_config()
  config.dtype = args.dtype
  model = build_model('unet')
  graphdef, params, batch_stats = steps.split_model(model)
  mesh = parallel.create_mesh()
  params, batch_stats = parallel.put_replicated((params, batch_stats), mesh)
  predict_fn = segmentation_steps.jit_predict_step(graphdef, mesh, dtype=args.dtype)
  predict = unet_run.image_predictor(predict_fn, params, batch_stats, config,
                                     model.output_size(config.data.window), mesh)
  image = np.random.default_rng(0).random((1152, 896)).astype(np.float32)
  with jax.set_mesh(mesh):
    result = timing.measure_throughput(lambda: predict(image), batch_size=1,
                                       warmup_steps=1, windows=args.windows,
                                       steps_per_window=1, sync=lambda: None)
  return {'seconds_per_image': 1 / result['images_per_second'],
          'first_image_seconds': result['first_step_seconds'],
          'window': config.data.window, 'stride': config.data.stride}


MEASURES = {'step': measure_step, 'checkpoint': measure_checkpoint,
            'sliding_window': measure_sliding_window}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--measure', choices=sorted(MEASURES), default='step')
  parser.add_argument('--net', choices=NETS, default='resnet50')
  timing.add_workload_arguments(parser)
  args = parser.parse_args(argv)
  result = MEASURES[args.measure](args)
  timing.emit({'framework': 'mammojax', 'measure': args.measure, 'net': args.net,
               'size': args.size, 'batch': args.batch, 'dtype': args.dtype,
               'device': jax.devices()[0].platform, **result,
               'peak_rss_mb': timing.peak_rss_mb(),
               'device_peak_mb': timing.jax_device_peak_mb()})


if __name__ == '__main__':
  main()
