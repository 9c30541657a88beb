"""Lesion segmentation: a U-Net trained on windows, scored on whole images.

Command:
  python -m mammojax.main --config=configs/segmentation.py --workdir=/tmp/segmentation

Data: the built-in synthetic CBIS-DDSM set (320 patients), masses only, images
resized to 128 pixels high (101 wide); the mask of an image is the union of
its lesions' ROI masks. Training draws 64-pixel windows (6 per image and
epoch), half of them centred on a lesion; validation and test images are
predicted whole through windows every 32 pixels, blended. The sigmoid
threshold is chosen on validation.
Expected on 2 CPU cores: ~7 min from a fresh cache (16 epochs of ~22 s),
test Dice ≈ 0.82, IoU ≈ 0.73 on 63 held-out images (measured: 7 min 14 s,
Dice 0.824, IoU 0.726, pooled Dice 0.852, best epoch 14, threshold 0.50).

Arguments (comma-separated):
  attention  the Attention U-Net (Oktay et al. 2018) instead of the U-Net;
  unpadded   the original paper's unpadded U-Net (valid convolutions,
             centre-cropped skips; window 108 → output 20 per window);
  smoke      seconds-long variant for the tests (metrics meaningless).
"""

from mammojax import defaults


def get_config(arg: str | None = None):
  args = set((arg or '').split(','))
  config = defaults.add_window_fields(defaults.base_config())
  config.task = 'segmentation'
  config.strategy = 'segmentation'
  config.data.abnormality_types = 'mass'
  config.data.preprocess.resize_height = 128
  config.data.window = 64
  config.data.stride = 32
  config.data.windows_per_image = 6
  config.data.batch_size = 16
  config.data.eval_batch_size = 32
  config.data.augmentation = 'flip_hv'
  config.model.architecture = 'attention_unet' if 'attention' in args else 'unet'
  config.model.unet.depth = 3
  config.model.unet.width = 16
  config.model.dropout = 0.0
  config.train.loss = 'bce_dice'
  if 'unpadded' in args:
    config.model.unet.padding = 'VALID'
    config.data.window, config.data.stride = 108, 20
  defaults.set_phases(config, train=defaults.phase(
      epochs=16, unfreeze='all', optimizer='adam', learning_rate=2e-3,
      early_stopping_patience=6, plateau_patience=3))
  if 'smoke' in args:
    defaults.shrink_unet_for_smoke(config)
    config.eval.panels_every_epochs = 1
    if 'unpadded' in args:
      config.data.window, config.data.stride = 44, 4
  return config
