"""Feature extraction: the backbone stays frozen, only the dense head trains (Adam).

Command:
  python -m mammojax.main --config=configs/feature_extraction.py --workdir=/tmp/fe

The notes train the head for 30 epochs with Adam on ImageNet features; that is
the default here, meant for --config.model.pretrained=FILE (a Keras weights
file, with --config.data.preprocess.normalize=none).
Expected on 2 CPU cores: ~1 min. Without weights the frozen backbone is random:
its pooled features are small and unnormalised, and the dense head barely
moves from chance (measured: test ROC-AUC 0.51, early stop at epoch 23). The
classical variant standardises the same features first:
--config.classical=svm reaches test ROC-AUC 0.85 (logistic_regression 0.74).
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
