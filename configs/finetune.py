"""Fine-tuning: head warm-up (Adam), then the last N blocks (SGD), then all.

The default main job. Command:
  python -m mammojax.main --config=configs/finetune.py --workdir=/tmp/finetune

Weights: no pretrained file can be downloaded here, so the backbone starts from
random initialisation unless --config.model.pretrained=FILE names one.
Data: the built-in synthetic CBIS-DDSM set (generated on first use).
Expected on 2 CPU cores: ~4 min; test ROC-AUC ≈ 0.9 (patients held out).
`:smoke` shrinks it to seconds for the tests (metrics meaningless).
"""

from mammojax import defaults


def get_config(arg: str | None = None):
  config = defaults.base_config()
  config.strategy = 'finetune'
  defaults.set_phases(
      config,
      warmup=defaults.phase(epochs=4, unfreeze='0', optimizer='adam', learning_rate=1e-3),
      finetune=defaults.phase(epochs=12, unfreeze='3', optimizer='sgd', learning_rate=1e-2,
                              momentum=0.9, weight_decay=1e-4, early_stopping_patience=6,
                              plateau_patience=3),
      unfreeze_all=defaults.phase(epochs=12, unfreeze='all', optimizer='sgd',
                                  learning_rate=1e-2, momentum=0.9, weight_decay=1e-4,
                                  early_stopping_patience=6, plateau_patience=3))
  if arg == 'smoke':
    defaults.shrink_for_smoke(config)
  return config
