"""Model constructors by name: a plain dict, no registry magic."""

import functools

from flax import nnx

from mammojax.models import heads, resnet, small_cnn
from mammojax.models.classifier import Classifier

BACKBONES = {
    'small_cnn': small_cnn.SmallCNN,
    **{name: functools.partial(resnet.ResNet, stage_depths=depths)
       for name, depths in resnet.STAGE_DEPTHS.items()},
}


def create_classifier(model_config, *, in_channels: int, seed: int) -> Classifier:
  """Builds backbone + head from ``config.model`` with random initialisation."""
  if model_config.backbone not in BACKBONES:
    raise ValueError(f'Unknown backbone {model_config.backbone!r}; valid choices: '
                     f'{sorted(BACKBONES)}. Set --config.model.backbone=NAME.')
  rngs = nnx.Rngs(params=seed)
  backbone = BACKBONES[model_config.backbone](
      in_channels=in_channels, batchnorm_momentum=model_config.batchnorm_momentum, rngs=rngs)
  head = heads.Head(backbone.out_features, model_config.num_classes,
                    num_hidden=model_config.head_hidden_layers,
                    dropout=model_config.dropout, pooling=model_config.pooling,
                    rngs=rngs)
  return Classifier(backbone, head)
