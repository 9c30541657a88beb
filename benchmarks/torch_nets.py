"""Plain PyTorch reference networks for the peer throughput benchmark.

Written by hand (torchvision does not install beside the CPU torch wheel) with
the layouts of ``keras.applications`` and of ``mammojax.models.unet``, so that
every framework times the same arithmetic:

- ResNet50: bottleneck v1 as Keras (stride on the first 1x1 conv, convs with
  bias, BN epsilon 1.001e-5), stages of 3, 4, 6, 3 blocks.
- DenseNet121: growth 32, 4x bottleneck, compression 0.5, blocks 6, 12, 24, 16.
- MobileNet v1 (alpha 1): 13 depthwise separable blocks with ReLU6.
- InceptionV3: conv-BN(no scale)-ReLU units, stem then mixed0 ... mixed10.
- U-Net: ``UNet(depth=4, width=16, padding='SAME', norm='batch')`` (no dropout:
  ours defaults to 0).

Keras pads stride-2 'same' convolutions asymmetrically (bottom/right);
symmetric padding here gives the same output sizes and the same cost.
Backbone parameter counts with BN running statistics equal Keras' totals
(``parameter_count(..., running_stats=True)``).
"""

import torch
from torch import nn

_RESNET_EPSILON = 1.001e-5
_DENSENET_EPSILON = 1.001e-5
_KERAS_EPSILON = 1e-3  # MobileNet and InceptionV3


class BiasOnlyBatchNorm(nn.Module):
  """BatchNorm without scale (Keras ``scale=False``): normalise, add a learnt bias."""

  def __init__(self, features: int, eps: float):
    super().__init__()
    self.norm = nn.BatchNorm2d(features, eps=eps, affine=False)
    self.bias = nn.Parameter(torch.zeros(features))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.norm(x) + self.bias.view(1, -1, 1, 1)


def conv_bn(in_features: int, out_features: int, kernel_size, *, stride: int = 1,
            padding=0, bias: bool = False, eps: float = 1e-5, groups: int = 1,
            scale: bool = True) -> list[nn.Module]:
  """[conv, BN]: the unit every network here is built from."""
  norm = (nn.BatchNorm2d(out_features, eps=eps) if scale
          else BiasOnlyBatchNorm(out_features, eps))
  return [nn.Conv2d(in_features, out_features, kernel_size, stride, padding, groups=groups,
                    bias=bias), norm]


class Bottleneck(nn.Module):
  """ResNet v1 bottleneck: 1x1 (strided) → 3x3 → 1x1 (4x), added to the shortcut."""

  def __init__(self, in_features: int, width: int, *, stride: int, project: bool):
    super().__init__()
    kwargs = {'bias': True, 'eps': _RESNET_EPSILON}
    self.body = nn.Sequential(
        *conv_bn(in_features, width, 1, stride=stride, **kwargs), nn.ReLU(),
        *conv_bn(width, width, 3, padding=1, **kwargs), nn.ReLU(),
        *conv_bn(width, 4 * width, 1, **kwargs))
    self.shortcut = (nn.Sequential(*conv_bn(in_features, 4 * width, 1, stride=stride,
                                            **kwargs)) if project else nn.Identity())

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.relu(self.body(x) + self.shortcut(x))


def resnet50() -> nn.Sequential:
  """ResNet50 without its top (2048 output channels)."""
  layers = [*conv_bn(3, 64, 7, stride=2, padding=3, bias=True, eps=_RESNET_EPSILON),
            nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)]
  features = 64
  for stage, (width, depth) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
    for index in range(depth):
      stride = 2 if stage > 0 and index == 0 else 1
      layers.append(Bottleneck(features, width, stride=stride, project=index == 0))
      features = 4 * width
  return nn.Sequential(*layers)


class DenseLayer(nn.Module):
  """BN-ReLU-1x1 conv (128) → BN-ReLU-3x3 conv (32), concatenated to the input."""

  def __init__(self, in_features: int):
    super().__init__()
    eps = _DENSENET_EPSILON
    self.body = nn.Sequential(
        nn.BatchNorm2d(in_features, eps=eps), nn.ReLU(),
        nn.Conv2d(in_features, 128, 1, bias=False),
        nn.BatchNorm2d(128, eps=eps), nn.ReLU(), nn.Conv2d(128, 32, 3, padding=1, bias=False))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, self.body(x)], dim=1)


def densenet121() -> nn.Sequential:
  """DenseNet121 without its top (1024 output channels, closing BN + ReLU)."""
  eps = _DENSENET_EPSILON
  layers = [*conv_bn(3, 64, 7, stride=2, padding=3, eps=eps), nn.ReLU(),
            nn.MaxPool2d(3, 2, padding=1)]
  features = 64
  for stage, depth in enumerate((6, 12, 24, 16)):
    if stage > 0:  # transition: halve the channels and the size
      layers += [nn.BatchNorm2d(features, eps=eps), nn.ReLU(),
                 nn.Conv2d(features, features // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
      features //= 2
    for _ in range(depth):
      layers.append(DenseLayer(features))
      features += 32
  return nn.Sequential(*layers, nn.BatchNorm2d(features, eps=eps), nn.ReLU())


def mobilenet() -> nn.Sequential:
  """MobileNet v1 (alpha 1) without its top (1024 output channels)."""
  eps = _KERAS_EPSILON
  layers = [*conv_bn(3, 32, 3, stride=2, padding=1, eps=eps), nn.ReLU6()]
  features = 32
  for filters, stride in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2),
                          (1024, 1)):
    layers += [*conv_bn(features, features, 3, stride=stride, padding=1, groups=features,
                        eps=eps), nn.ReLU6(),
               *conv_bn(features, filters, 1, eps=eps), nn.ReLU6()]
    features = filters
  return nn.Sequential(*layers)


def _unit(in_features: int, out_features: int, kernel_size, *, stride: int = 1,
          valid: bool = False) -> nn.Sequential:
  """Keras' InceptionV3 ``conv2d_bn``: conv (no bias), BN without scale, ReLU."""
  kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
  padding = 0 if valid else (kernel[0] // 2, kernel[1] // 2)
  return nn.Sequential(*conv_bn(in_features, out_features, kernel, stride=stride,
                                padding=padding, eps=_KERAS_EPSILON, scale=False), nn.ReLU())


class Concat(nn.Module):
  """Branches applied to one input, concatenated on channels."""

  def __init__(self, *branches: list[nn.Module]):
    super().__init__()
    self.branches = nn.ModuleList(nn.Sequential(*branch) for branch in branches)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([branch(x) for branch in self.branches], dim=1)


def _avg_pool() -> nn.Module:
  # Keras' 3x3 'same' average pooling leaves the padded zeros out of the mean.
  return nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)


def _split_1x3_3x1(features: int) -> Concat:
  return Concat([_unit(features, 384, (1, 3))], [_unit(features, 384, (3, 1))])


def inception_v3() -> nn.Sequential:
  """InceptionV3 without its top (2048 output channels; inputs ≥ 75 pixels)."""
  blocks = [_unit(3, 32, 3, stride=2, valid=True), _unit(32, 32, 3, valid=True),
            _unit(32, 64, 3), nn.MaxPool2d(3, 2), _unit(64, 80, 1), _unit(80, 192, 3, valid=True),
            nn.MaxPool2d(3, 2)]
  c = 192
  for pool_features in (32, 64, 64):  # mixed0 ... mixed2
    blocks.append(Concat([_unit(c, 64, 1)], [_unit(c, 48, 1), _unit(48, 64, 5)],
                         [_unit(c, 64, 1), _unit(64, 96, 3), _unit(96, 96, 3)],
                         [_avg_pool(), _unit(c, pool_features, 1)]))
    c = 224 + pool_features
  blocks.append(Concat([_unit(c, 384, 3, stride=2, valid=True)],  # mixed3
                       [_unit(c, 64, 1), _unit(64, 96, 3),
                        _unit(96, 96, 3, stride=2, valid=True)],
                       [nn.MaxPool2d(3, 2)]))
  c = 384 + 96 + c
  for w in (128, 160, 160, 192):  # mixed4 ... mixed7
    blocks.append(Concat([_unit(c, 192, 1)],
                         [_unit(c, w, 1), _unit(w, w, (1, 7)), _unit(w, 192, (7, 1))],
                         [_unit(c, w, 1), _unit(w, w, (7, 1)), _unit(w, w, (1, 7)),
                          _unit(w, w, (7, 1)), _unit(w, 192, (1, 7))],
                         [_avg_pool(), _unit(c, 192, 1)]))
    c = 768
  blocks.append(Concat([_unit(c, 192, 1), _unit(192, 320, 3, stride=2, valid=True)],  # mixed8
                       [_unit(c, 192, 1), _unit(192, 192, (1, 7)), _unit(192, 192, (7, 1)),
                        _unit(192, 192, 3, stride=2, valid=True)],
                       [nn.MaxPool2d(3, 2)]))
  c = 320 + 192 + c
  for _ in range(2):  # mixed9, mixed10
    blocks.append(Concat([_unit(c, 320, 1)], [_unit(c, 384, 1), _split_1x3_3x1(384)],
                         [_unit(c, 448, 1), _unit(448, 384, 3), _split_1x3_3x1(384)],
                         [_avg_pool(), _unit(c, 192, 1)]))
    c = 2048
  return nn.Sequential(*blocks)


def _double_conv(in_features: int, out_features: int) -> nn.Sequential:
  # Convolutions before a BatchNorm need no bias (as ours with norm='batch').
  return nn.Sequential(*conv_bn(in_features, out_features, 3, padding=1), nn.ReLU(),
                       *conv_bn(out_features, out_features, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
  """Padded U-Net: widths ``width * 2**level``, 2x2 up-convolutions, [skip, up] concat."""

  def __init__(self, in_channels: int = 1, out_channels: int = 1, *, depth: int = 4,
               width: int = 16):
    super().__init__()
    widths = [width * 2**level for level in range(depth + 1)]
    self.encoder = nn.ModuleList(_double_conv(i, o) for i, o in
                                 zip([in_channels] + widths[:-1], widths))
    levels = list(reversed(range(depth)))
    self.up = nn.ModuleList(nn.ConvTranspose2d(widths[l + 1], widths[l], 2, stride=2)
                            for l in levels)
    self.decoder = nn.ModuleList(_double_conv(2 * widths[l], widths[l]) for l in levels)
    self.logits = nn.Conv2d(widths[0], out_channels, 1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    skips = []
    for index, level in enumerate(self.encoder):
      x = level(nn.functional.max_pool2d(x, 2) if index else x)
      skips.append(x)
    x = skips.pop()
    for up, level, skip in zip(self.up, self.decoder, reversed(skips)):
      x = level(torch.cat([skip, up(x)], dim=1))
    return self.logits(x)


# Every classifier backbone: (constructor, output channels).
BACKBONES = {
    'resnet50': (resnet50, 2048),
    'densenet121': (densenet121, 1024),
    'mobilenet': (mobilenet, 1024),
    'inception_v3': (inception_v3, 2048),
}


def classifier(net: str, *, hidden: int, num_classes: int = 2) -> nn.Sequential:
  """Backbone → global average pool → Linear(hidden) → ReLU → Dropout(0.5) → logits."""
  build, features = BACKBONES[net]
  return nn.Sequential(build(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.5),
                       nn.Linear(hidden, num_classes))


def parameter_count(module: nn.Module, *, running_stats: bool = False) -> int:
  """Trainable parameters; with ``running_stats``, plus BN means and variances (Keras' total)."""
  count = sum(p.numel() for p in module.parameters() if p.requires_grad)
  if running_stats:
    count += sum(b.numel() for name, b in module.named_buffers()
                 if name.endswith(('running_mean', 'running_var')))
  return count
