"""The base configuration every experiment config starts from.

Experiment files in ``configs/`` call ``base_config()`` and set their phases;
``phase()`` fills the fields every phase has, so a config only states what
differs. Numbers come from the researchers' notes (../shared/SPEC.md §3).
"""

import ml_collections

PHASE_FIELDS = ('epochs', 'unfreeze', 'optimizer', 'learning_rate', 'momentum',
                'nesterov', 'weight_decay', 'early_stopping_patience',
                'plateau_patience', 'plateau_factor')


def phase(*, epochs: int, unfreeze: str, optimizer: str, learning_rate: float,
          momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
          early_stopping_patience: int = 0, plateau_patience: int = 0,
          plateau_factor: float = 0.1) -> ml_collections.ConfigDict:
  """One training phase.

  Args:
    epochs: maximum epochs of the phase (0 skips it).
    unfreeze: 'all', or the number N of last backbone blocks that train
      (0 = backbone frozen, only the head trains), as a string.
    optimizer: 'adam', 'adamw' or 'sgd'.
    early_stopping_patience: epochs without a better validation AUC before
      the phase stops (0 = never).
    plateau_patience: epochs without a lower validation loss before the
      learning rate is multiplied by ``plateau_factor`` (0 = never).
  """
  return ml_collections.ConfigDict(dict(
      epochs=epochs, unfreeze=str(unfreeze), optimizer=optimizer,
      learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
      weight_decay=weight_decay, early_stopping_patience=early_stopping_patience,
      plateau_patience=plateau_patience, plateau_factor=plateau_factor))


def base_config() -> ml_collections.ConfigDict:
  """Data, model and run settings shared by every experiment."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.task = 'classification'  # or 'segmentation', 'autoencoder' (configs set it)
  config.overwrite = False  # True: delete a workdir holding another config
  # Compute dtype of the forward/backward pass: 'float32', or 'bfloat16' on
  # accelerators that have it (parameters and optimizer state stay float32).
  config.dtype = 'float32'
  config.strategy = ''  # a name for reports: scratch, feature_extraction, finetune
  config.schedule = ''  # comma-separated phase names, run in this order
  # '' trains the network; 'svm', 'logistic_regression' or 'gradient_boosting'
  # fits that scikit-learn model on the frozen backbone's pooled features.
  config.classical = ''
  config.phases = ml_collections.ConfigDict()
  config.data = data_config()
  config.model = model_config()
  config.train = ml_collections.ConfigDict()
  config.train.loss = 'cross_entropy'  # or 'focal'; segmentation: bce_dice, dice, ...
  config.train.class_weights = ''  # '', 'balanced', or one weight per class '1,2.5'
  config.train.keep_checkpoints = 2  # latest checkpoints kept (plus the best)
  # Most the `latest` saves may block training, as a share of the run's time: after
  # epochs of a few seconds only every few epochs are saved (always a phase's last).
  # 1.0 saves after every epoch.
  config.train.checkpoint_share = 0.02
  # > 1: average the gradients of this many batches before each update (an
  # effective batch of grad_accumulation × data.batch_size in less memory).
  config.train.grad_accumulation = 1
  return config


def data_config() -> ml_collections.ConfigDict:
  """``config.data``: sources, classes, splits, preprocessing, patches, loading."""
  config = ml_collections.ConfigDict()
  # One source or several, comma-separated (e.g. 'cbis_ddsm,mias'), with as
  # many comma-separated data.root folders in the same order.
  config.source = 'synthetic'
  config.root = ''  # dataset folder; for 'synthetic', where it is written
  config.classes = ''  # class names → labels 0..K-1; '' = the source's own
  config.cache_dir = ''  # preprocessed patches; '' = ~/.cache/mammojax/patches
  # data.source=csv_masks (ISIC style): ROOT/<csv_file> with these columns.
  config.csv_file = 'labels.csv'
  config.csv_id_column = 'id'
  config.csv_label_column = 'label'
  config.synthetic_patients = 320
  config.synthetic_seed = 0
  config.abnormality_types = 'mass,calcification'
  config.val_fraction = 0.2
  config.test_fraction = 0.2  # held out by patient where the dataset has no test split
  config.folds = 0  # ≥ 2: k-fold cross-validation by patient, validating on data.fold
  config.fold = 0
  # 'roi': a square crop around each lesion's mask (× patch_margin); 'whole':
  # the whole image; 'auto': 'roi' when the records locate lesions.
  config.crop = 'auto'
  config.patch_size = 64
  config.patch_margin = 1.2  # the notes use 1.2 and 1.4
  config.crops_per_lesion = 1  # > 1: extra training crops, shifted, IoU ≥ crop_min_overlap
  config.crop_min_overlap = 0.9
  # > 0: background patches per image (breast tissue away from lesions, TFDS
  # rules), labelled 'background', which data.classes must then name.
  config.background_patches = 0
  config.augmentation = 'flip_hv'
  config.balance = 'none'  # 'batches': oversample so every batch is class-balanced
  # The workdir of a segmentation run: lesions are cropped by the masks it predicts
  # instead of the drawn ROI masks (what happens on new images).
  config.roi_from = ''
  # The workdir of a segmentation run trained on breast (or thorax) masks: its
  # predicted region replaces the threshold-based breast mask of preprocessing.
  config.region_from = ''
  config.tta = False  # validation/test probabilities averaged over 4 flipped views
  config.batch_size = 32
  config.eval_batch_size = 128
  # Stored in preprocess.json and part of the patch cache key (data/preprocess.py).
  config.preprocess = ml_collections.ConfigDict(dict(
      clahe_clip_limit=2.0, clahe_tile=8, resize_height=0,
      normalize='zscore',  # 'zscore', 'gcn' (global contrast normalisation) or 'none'
      gcn_scale=1.0, gcn_lambda=0.0,
      breast_mask=False,  # keep the largest bright component: drops labels and markers
      mask_threshold=0.0,  # breast mask threshold as a fraction of the range; 0 = Otsu
      canonical_side=''))  # 'left' or 'right': flip images so the breast lies there
  return config


def model_config() -> ml_collections.ConfigDict:
  """``config.model``: classifier backbone and head, weights, U-Net sizes."""
  config = ml_collections.ConfigDict()
  config.backbone = 'small_cnn'
  config.pretrained = ''  # a Keras weights file (*.h5); '' = random initialisation
  config.grayscale = 'repeat'  # pretrained: gray → RGB ('repeat') or sum 1st conv ('sum')
  config.input_preprocessing = 'auto'  # auto: the weights' own (caffe/tf/torch) if pretrained
  config.num_classes = 2
  config.head_hidden_layers = 1
  config.dropout = 0.5
  config.pooling = 'avg'
  config.batchnorm_momentum = 0.9  # Keras uses 0.99: too slow for small sets
  # A run whose encoder starts this model: the workdir of a pretrain_autoencoder run
  # (with backbone unet_encoder or unet_encoder_gmp, or a U-Net for segmentation).
  config.init_from = ''
  # U-Nets (segmentation, autoencoder, and the unet_encoder backbones): 'SAME'
  # padding, or 'VALID' for the original paper's unpadded net (centre-cropped skips).
  config.architecture = 'unet'  # or 'attention_unet' (Oktay et al. 2018)
  config.unet = ml_collections.ConfigDict(dict(
      depth=4, width=16, padding='SAME', norm='batch', autoencoder_skips=False))
  return config


def runner_config(task: str) -> ml_collections.ConfigDict:
  """The fields every config has, for tasks that run other runs (sweep, search, ensemble)."""
  return ml_collections.ConfigDict(dict(task=task, seed=0, overwrite=False))


def set_phases(config: ml_collections.ConfigDict, **phases) -> ml_collections.ConfigDict:
  """Sets ``config.phases`` and ``config.schedule`` (keyword order = run order)."""
  config.phases = ml_collections.ConfigDict(phases)
  config.schedule = ','.join(phases)
  return config


def add_window_fields(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Fields of the U-Net tasks (segmentation, autoencoder): windows and evaluation."""
  config.data.window = 128  # training window side (the U-Net's input)
  config.data.stride = 64  # inference: output windows every ``stride`` pixels, blended
  config.data.windows_per_image = 8  # training windows drawn per image and epoch
  config.data.foreground_fraction = 0.5  # windows centred on a lesion pixel
  config.eval = ml_collections.ConfigDict()
  config.eval.min_area = 0  # post-processing: drop predicted components smaller than this
  config.eval.panels_every_epochs = 5  # plots/segmentation_epochNNN.png (0 = never)
  return config


def shrink_for_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Seconds-long variant for tests (the big_vision ``runlocal`` idea)."""
  config.data.synthetic_patients = 30
  config.data.patch_size = 32
  config.data.batch_size = 8
  config.data.eval_batch_size = 16
  for name in config.phases:
    config.phases[name].epochs = min(config.phases[name].epochs, 2)
  return config


def shrink_unet_for_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Seconds-long variant of a U-Net task for tests: tiny images, windows and net."""
  config.data.synthetic_patients = 30
  config.data.preprocess.resize_height = 96
  config.data.window, config.data.stride = 32, 16
  config.data.windows_per_image = 2
  config.data.batch_size = 8
  config.model.unet.depth = 2
  config.model.unet.width = 4
  for name in config.phases:
    config.phases[name].epochs = min(config.phases[name].epochs, 2)
  return config
