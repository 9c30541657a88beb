"""Fine-tuning: head warm-up (Adam), then the last N blocks (SGD), then all.

The default main job. Command:
  python -m mammojax.main --config=configs/finetune.py --workdir=/tmp/finetune

Weights: no pretrained file can be downloaded here, so the backbone starts from
random initialisation unless --config.model.pretrained=FILE names a Keras
weights file (then also --config.data.preprocess.normalize=none).
Data: the built-in synthetic CBIS-DDSM set (320 patients, generated on first use).
Expected on 2 CPU cores: ~3 min from a fresh cache (data generation and
compilation included; measured 2 min 58 s), 1 min 43 s with warm caches; test
ROC-AUC ≈ 0.965, accuracy ≈ 0.88 on 209 lesions of held-out patients
(measured: AUC 0.965, accuracy 0.880; report.md and plots/ written at the end).

Arguments (comma-separated):
  smoke  shrinks it to seconds for the tests (metrics meaningless);
  paper  the notes' schedule for ImageNet weights on real data: warm-up 30
         epochs (Adam 1e-3), then the last 4 blocks with SGD 1e-4, momentum 0.9,
         weight decay 1e-4, early stopping 20, up to 90 epochs, plateau ×0.1,
         then everything with SGD 1e-5. Hours on a CPU; meant for a GPU.
"""

from mammojax import defaults


def get_config(arg: str | None = None):
  args = set((arg or '').split(','))
  config = defaults.base_config()
  config.strategy = 'finetune'
  if 'paper' in args:
    sgd = dict(optimizer='sgd', momentum=0.9, weight_decay=1e-4, early_stopping_patience=20,
               plateau_patience=5)
    defaults.set_phases(
        config,
        warmup=defaults.phase(epochs=30, unfreeze='0', optimizer='adam', learning_rate=1e-3),
        finetune=defaults.phase(epochs=90, unfreeze='4', learning_rate=1e-4, **sgd),
        unfreeze_all=defaults.phase(epochs=90, unfreeze='all', learning_rate=1e-5, **sgd))
  else:
    sgd = dict(optimizer='sgd', learning_rate=1e-2, momentum=0.9, weight_decay=1e-4,
               early_stopping_patience=6, plateau_patience=3)
    defaults.set_phases(
        config,
        warmup=defaults.phase(epochs=4, unfreeze='0', optimizer='adam', learning_rate=1e-3),
        finetune=defaults.phase(epochs=12, unfreeze='3', **sgd),
        unfreeze_all=defaults.phase(epochs=12, unfreeze='all', **sgd))
  if 'smoke' in args:
    defaults.shrink_for_smoke(config)
  return config
