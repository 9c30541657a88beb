"""Self-supervised pretraining: a U-Net autoencoder reconstructs unlabelled images.

Command:
  python -m mammojax.main --config=configs/pretrain_autoencoder.py --workdir=/tmp/autoencoder
Then a classifier on its encoder (features at three depths through conv →
squeeze-and-excitation → pools → dense 128):
  python -m mammojax.main --config=configs/finetune.py --workdir=/tmp/ae_finetune \
    --config.model.backbone=unet_encoder --config.model.init_from=/tmp/autoencoder

Data: the images of the built-in synthetic set (labels unused), resized to 192
pixels high; any source works, and --config.data.source=images
--config.data.root=FOLDER reads every image under a folder. The encoder's
sizes (model.unet: depth 4, width 16) must match the classifier's.
Expected on 2 CPU cores: ~13 min from a fresh cache (10 epochs of ~65 s on
316 training images, 4 windows of 64 pixels each per epoch, then whole-image
reconstructions); validation PSNR ≈ 30 dB (measured: 13 min 35 s, best epoch
10, val PSNR 30.2 dB, test 29.9 dB; reconstructions are blurred, as an
autoencoder without skips should be — the encoder carries the image).

Arguments: smoke (seconds-long variant for the tests).
"""

from mammojax import defaults


def get_config(arg: str | None = None):
  args = set((arg or '').split(','))
  config = defaults.add_window_fields(defaults.base_config())
  config.task = 'autoencoder'
  config.strategy = 'autoencoder'
  config.data.preprocess.resize_height = 192
  config.data.window = 64
  config.data.stride = 64  # validation reconstructs whole images from abutting windows
  config.data.foreground_fraction = 0.0  # no labels: uniform windows
  config.data.windows_per_image = 4
  config.data.batch_size = 16
  config.data.augmentation = 'flip_hv'
  config.model.dropout = 0.0
  config.train.loss = 'mse'
  config.eval.panels_every_epochs = 0
  defaults.set_phases(config, train=defaults.phase(
      epochs=10, unfreeze='all', optimizer='adam', learning_rate=1e-3,
      early_stopping_patience=4, plateau_patience=2))
  if 'smoke' in args:
    defaults.shrink_unet_for_smoke(config)
  return config
