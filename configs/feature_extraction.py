"""Feature extraction: the backbone stays frozen, only the dense head trains (Adam).

Command:
  python -m mammojax.main --config=configs/feature_extraction.py --workdir=/tmp/fe

The notes train the head for 30 epochs with Adam on ImageNet features; that is
the default here. Without --config.model.pretrained=FILE the frozen backbone is
random, so this measures what random convolutional features carry.
Expected on 2 CPU cores: ~2 min; test ROC-AUC ≈ 0.75 with a random backbone.
`:smoke` shrinks it to seconds for the tests.
"""

from mammojax import defaults


def get_config(arg: str | None = None):
  config = defaults.base_config()
  config.strategy = 'feature_extraction'
  defaults.set_phases(
      config,
      head=defaults.phase(epochs=30, unfreeze='0', optimizer='adam', learning_rate=1e-3,
                          early_stopping_patience=10, plateau_patience=5))
  if arg == 'smoke':
    defaults.shrink_for_smoke(config)
  return config
