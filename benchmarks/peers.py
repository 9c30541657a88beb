"""Training-step throughput of the same networks in Keras 3 (JAX backend) and PyTorch.

    python benchmarks/peers.py --framework {keras,torch} --net resnet50 --size 128 \
        --batch 16 [--dtype bfloat16] [--windows 5 --steps-per-window 5 --warmup 3] \
        [--threads 2] [--channels-last]

One measurement per process (``benchmarks/run.py`` spawns them): builds the
network (``keras.applications`` or ``torch_nets``) with the classifier head
used by mammojax (global average pool → Dense(rule-of-thumb width) → ReLU →
Dropout(0.5) → Dense(2)), or the U-Net, trains it on one fixed random batch
with Adam (lr 1e-4) and prints one ``RESULT <json>`` line (``timing.emit``).
"""

import argparse
import math
import os
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import timing  # pylint: disable=wrong-import-position

NETS = ('resnet50', 'densenet121', 'mobilenet', 'inception_v3', 'unet')
FEATURES = {'resnet50': 2048, 'densenet121': 1024, 'mobilenet': 1024, 'inception_v3': 2048}
LEARNING_RATE = 1e-4
UNET_DEPTH, UNET_WIDTH = 4, 16  # mammojax.models.unet.UNet(depth=4, width=16)


def head_width(features: int) -> int:
  """``mammojax.models.heads.rule_of_thumb_width`` (2048 → 32, 1024 → 32).

  Repeated, not imported: importing mammojax loads Flax and JAX, which would
  inflate the torch process's peak memory that this benchmark reports.
  """
  root = math.sqrt(features)
  lower = 2**math.floor(math.log2(root))
  return 2 * lower if 2 * lower - root <= root - lower else lower


def make_batch(net: str, batch: int, size: int) -> tuple[np.ndarray, np.ndarray]:
  """A fixed random NHWC batch: labels in {0, 1}, or a binary mask for the U-Net."""
  rng = np.random.default_rng(0)
  channels = 1 if net == 'unet' else 3
  images = rng.normal(size=(batch, size, size, channels)).astype(np.float32)
  if net == 'unet':
    targets = (rng.random((batch, size, size, 1)) < 0.5).astype(np.float32)
  else:
    targets = rng.integers(0, 2, batch).astype(np.int32)
  return images, targets


def keras_unet(keras, size: int):
  """A functional Keras U-Net with the layers of ``mammojax.models.unet.UNet``."""
  layers = keras.layers

  def double_conv(x, width):
    for _ in range(2):
      x = layers.Conv2D(width, 3, padding='same', use_bias=False)(x)
      # Flax's BatchNorm defaults (momentum 0.9, epsilon 1e-5), as ours.
      x = layers.ReLU()(layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x))
    return x

  inputs = keras.Input((size, size, 1))
  x, skips = inputs, []
  for level in range(UNET_DEPTH + 1):
    if level:
      x = layers.MaxPooling2D(2)(x)
    x = double_conv(x, UNET_WIDTH * 2**level)
    skips.append(x)
  skips.pop()
  for level in reversed(range(UNET_DEPTH)):
    up = layers.Conv2DTranspose(UNET_WIDTH * 2**level, 2, strides=2)(x)
    x = double_conv(layers.Concatenate()([skips[level], up]), UNET_WIDTH * 2**level)
  return keras.Model(inputs, layers.Conv2D(1, 1)(x))


def keras_model(keras, net: str, size: int):
  """The compiled Keras model for ``net`` (classifier head or U-Net)."""
  if net == 'unet':
    model = keras_unet(keras, size)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
  else:
    application = {'resnet50': keras.applications.ResNet50,
                   'densenet121': keras.applications.DenseNet121,
                   'mobilenet': keras.applications.MobileNet,
                   'inception_v3': keras.applications.InceptionV3}[net]
    backbone = application(weights=None, include_top=False, pooling='avg',
                           input_shape=(size, size, 3))
    x = keras.layers.Dense(head_width(FEATURES[net]), activation='relu')(backbone.output)
    x = keras.layers.Dropout(0.5)(x)
    model = keras.Model(backbone.input, keras.layers.Dense(2)(x))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss, jit_compile=True)
  return model


def measure_keras(args) -> dict:
  """Times ``train_on_batch``, which returns the loss as a Python float (so syncs)."""
  os.environ['KERAS_BACKEND'] = 'jax'  # must precede the first keras import
  import keras  # pylint: disable=import-outside-toplevel
  if keras.backend.backend() != 'jax':
    raise RuntimeError(f'Keras loaded the {keras.backend.backend()} backend; unset '
                       'KERAS_BACKEND or import keras only through this script.')
  keras.utils.set_random_seed(0)
  if args.dtype == 'bfloat16':
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
  model = keras_model(keras, args.net, args.size)
  images, targets = make_batch(args.net, args.batch, args.size)
  result = timing.measure_throughput(
      lambda: model.train_on_batch(images, targets), batch_size=args.batch,
      warmup_steps=args.warmup, windows=args.windows, steps_per_window=args.steps_per_window,
      sync=lambda: None)
  params = sum(math.prod(w.shape) for w in model.trainable_weights)
  return {**result, 'params': int(params), 'device_peak_mb': timing.jax_device_peak_mb()}


def torch_training_step(args):
  """(step, sync, model, device): one zero_grad, forward, loss, backward, Adam step.

  On CUDA when present. ``sync()`` blocks on the last step's loss.
  """
  import torch  # pylint: disable=import-outside-toplevel
  from benchmarks import torch_nets  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  if args.net == 'unet':
    model = torch_nets.UNet(depth=UNET_DEPTH, width=UNET_WIDTH)
    loss_fn = torch.nn.BCEWithLogitsLoss()
  else:
    model = torch_nets.classifier(args.net, hidden=head_width(FEATURES[args.net]))
    loss_fn = torch.nn.CrossEntropyLoss()
  images, targets = make_batch(args.net, args.batch, args.size)
  images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
  targets = torch.from_numpy(targets).to(device)
  targets = targets.permute(0, 3, 1, 2) if args.net == 'unet' else targets.long()
  model = model.to(device)
  if args.channels_last:
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
  model.train()
  optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
  last_loss = []

  def step():
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=args.dtype == 'bfloat16'):
      loss = loss_fn(model(images), targets)
    loss.backward()
    optimizer.step()
    last_loss[:] = [loss]

  return step, lambda: last_loss[0].item(), model, device


def measure_torch(args) -> dict:
  """Times ``torch_training_step``'s step."""
  import torch  # pylint: disable=import-outside-toplevel
  from benchmarks import torch_nets  # pylint: disable=import-outside-toplevel
  step, sync, model, device = torch_training_step(args)
  result = timing.measure_throughput(
      step, batch_size=args.batch, warmup_steps=args.warmup, windows=args.windows,
      steps_per_window=args.steps_per_window, sync=sync)
  return {**result, 'params': torch_nets.parameter_count(model), 'threads': args.threads,
          'channels_last': args.channels_last, 'device': device,
          'device_peak_mb': (torch.cuda.max_memory_allocated() / 2**20
                             if device == 'cuda' else None)}


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--framework', choices=('keras', 'torch'), required=True)
  parser.add_argument('--net', choices=NETS, required=True)
  timing.add_workload_arguments(parser)
  parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
  parser.add_argument('--channels-last', action='store_true', help='torch memory format')
  args = parser.parse_args(argv)
  if args.net == 'inception_v3' and args.size < 75:
    parser.error('InceptionV3 needs --size of at least 75 (Keras minimum).')
  if args.net == 'unet' and args.size % 2**UNET_DEPTH:
    parser.error(f'The U-Net needs --size divisible by {2**UNET_DEPTH}.')
  return args


def main(argv=None) -> None:
  args = parse_args(argv)
  measure = measure_keras if args.framework == 'keras' else measure_torch
  result = measure(args)
  timing.emit({'framework': args.framework, 'net': args.net, 'size': args.size,
               'batch': args.batch, 'dtype': args.dtype, **result,
               'peak_rss_mb': timing.peak_rss_mb()})


if __name__ == '__main__':
  main()
