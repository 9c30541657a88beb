"""Model constructors by name: a plain dict, no registry magic."""

import dataclasses
import functools
from typing import Callable

from flax import nnx

from mammojax.models import (densenet, heads, inception, keras_weights, mobilenet, resnet,
                             small_cnn, unet, unet_encoder, vgg)
from mammojax.models.classifier import Classifier

GRAYSCALE_MODES = ('repeat', 'sum')


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
  """How to build a backbone and what its Keras ImageNet weights expect."""
  build: Callable[..., nnx.Module]
  imagenet_input: str  # 'caffe', 'tf' or 'torch'; '' when no Keras weights exist
  min_size: int  # smallest input side Keras accepts for it


BACKBONES = {
    'small_cnn': BackboneSpec(small_cnn.SmallCNN, '', 16),
    **{name: BackboneSpec(functools.partial(resnet.ResNet, stage_depths=depths), 'caffe', 32)
       for name, depths in resnet.STAGE_DEPTHS.items()},
    **{name: BackboneSpec(functools.partial(densenet.DenseNet, stage_depths=depths), 'torch',
                          32) for name, depths in densenet.STAGE_DEPTHS.items()},
    'mobilenet': BackboneSpec(mobilenet.MobileNet, 'tf', 32),
    'mobilenet_v2': BackboneSpec(mobilenet.MobileNetV2, 'tf', 32),
    'inception_v3': BackboneSpec(inception.InceptionV3, 'tf', inception.MIN_INPUT_SIZE),
    **{name: BackboneSpec(functools.partial(vgg.VGG, stage_depths=depths), 'caffe',
                          vgg.MIN_INPUT_SIZE) for name, depths in vgg.STAGE_DEPTHS.items()},
    # A U-Net encoder (model.unet sizes), e.g. from an autoencoder run (model.init_from):
    # features at three depths through conv → SE → pools → dense 128, or max-pooled only.
    'unet_encoder': BackboneSpec(unet_encoder.EncoderClassifierBackbone, '', 16),
    'unet_encoder_gmp': BackboneSpec(
        functools.partial(unet_encoder.EncoderClassifierBackbone, attention=False), '', 16),
}
UNET_ARCHITECTURES = ('unet', 'attention_unet')


def check_backbone(name: str) -> BackboneSpec:
  if name not in BACKBONES:
    raise ValueError(f'Unknown backbone {name!r}; valid choices: {sorted(BACKBONES)}. '
                     'Set --config.model.backbone=NAME.')
  return BACKBONES[name]


def input_mode(model_config) -> str:
  """The on-device input scaling: the weights' own for pretrained runs, else none."""
  if model_config.input_preprocessing != 'auto':
    return model_config.input_preprocessing
  if not model_config.pretrained:
    return 'none'
  return check_backbone(model_config.backbone).imagenet_input or 'none'


def input_channels(model_config) -> int:
  """3 when pretrained weights take a repeated gray image, else 1."""
  if model_config.grayscale not in GRAYSCALE_MODES:
    raise ValueError(f'Unknown model.grayscale {model_config.grayscale!r}; valid choices: '
                     f'{GRAYSCALE_MODES}.')
  return 3 if model_config.pretrained and model_config.grayscale == 'repeat' else 1


def create_classifier(model_config, *, seed: int, load_pretrained: bool = True) -> Classifier:
  """Backbone + head from ``config.model``.

  Loads ``model.pretrained`` when set and ``load_pretrained`` (callers that
  restore a checkpoint next skip the file: the checkpoint wins).
  """
  spec = check_backbone(model_config.backbone)
  rngs = nnx.Rngs(params=seed)
  channels = input_channels(model_config)
  sizes = {}
  if model_config.backbone.startswith('unet_encoder'):
    sizes = dict(depth=model_config.unet.depth, width=model_config.unet.width,
                 padding=model_config.unet.padding, norm=model_config.unet.norm)
  backbone = spec.build(in_channels=channels,
                        batchnorm_momentum=model_config.batchnorm_momentum, rngs=rngs, **sizes)
  if model_config.pretrained and load_pretrained:
    if not spec.imagenet_input:
      raise ValueError(f'{model_config.backbone} has no Keras counterpart, so no weight file '
                       f'fits it; choose one of '
                       f'{sorted(n for n, s in BACKBONES.items() if s.imagenet_input)}.')
    keras_weights.load_keras_weights(backbone, model_config.pretrained,
                                     model_name=model_config.backbone)
  head = heads.Head(backbone.out_features, model_config.num_classes,
                    num_hidden=model_config.head_hidden_layers,
                    dropout=model_config.dropout, pooling=model_config.pooling,
                    rngs=rngs)
  return Classifier(backbone, head, input_mode=input_mode(model_config),
                    input_channels=channels)


def create_unet(model_config, *, seed: int, autoencoder: bool = False) -> nnx.Module:
  """A U-Net (``model.architecture``: 'unet' or 'attention_unet') sized by ``model.unet``,
  or the U-Net autoencoder used for self-supervised pretraining."""
  if model_config.architecture not in UNET_ARCHITECTURES:
    raise ValueError(f'Unknown model.architecture {model_config.architecture!r}; valid '
                     f'choices: {UNET_ARCHITECTURES}.')
  sizes = model_config.unet
  kwargs = dict(depth=sizes.depth, width=sizes.width, padding=sizes.padding, norm=sizes.norm,
                dropout=model_config.dropout, batchnorm_momentum=model_config.batchnorm_momentum,
                rngs=nnx.Rngs(params=seed))
  if autoencoder:
    return unet.UNetAutoencoder(1, skips=sizes.autoencoder_skips, **kwargs)
  return unet.UNet(1, 1, attention=model_config.architecture == 'attention_unet', **kwargs)
