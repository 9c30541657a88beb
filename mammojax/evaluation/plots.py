"""The result figures of a paper, drawn from the files runs write (never from live objects).

One function per figure; each saves a PNG and returns a small dict describing
what it drew (panels, bars, curves), so callers and tests can check the figure.
Inputs are a run's workdir (metrics.csv, summary.json, predictions_<split>.csv)
or a sweep's results.csv (one row per run).
"""

import csv
import json
import math
import os
import pathlib

from matplotlib import colormaps
from matplotlib import figure as mpl_figure
from matplotlib import patches as mpl_patches
import numpy as np
from sklearn import metrics as skm

from mammojax.evaluation import metrics as metrics_lib
from mammojax.evaluation import predictions

CURVE_METRICS = (('loss', 'loss'), ('accuracy', 'accuracy'), ('auc', 'AUC'),
                 ('precision', 'precision'), ('recall', 'recall'), ('f1', 'F1'))
ACCURACY_BARS_BY = ('weights', 'unfreeze')
WEIGHTS_ORDER = ('imagenet', 'autoencoder', 'random')  # pretrained first, the baseline last
PHASE_HATCHES = ('', '//', '..', 'xx', '\\\\', 'oo')
PANEL_INCHES = 3.2
GRID_COLUMNS = 4


# ---------------------------------------------------------------- file readers

def _read_csv(path: pathlib.Path, required: tuple[str, ...]) -> list[dict]:
  """Rows of a CSV that must exist, hold rows, and carry ``required`` columns."""
  if not path.is_file():
    raise FileNotFoundError(f'{path} not found: point at a finished run (or sweep) folder.')
  with open(path, newline='') as file:
    rows = list(csv.DictReader(file))
  if not rows:
    raise ValueError(f'{path} holds no rows; the run (or sweep) wrote nothing yet.')
  missing = [column for column in required if column not in rows[0]]
  if missing:
    raise ValueError(f'{path} lacks the column(s) {missing}; it has {list(rows[0])}.')
  return rows


def _read_summary(workdir: pathlib.Path) -> dict | None:
  """summary.json of a run, or None when the run has not written one yet."""
  path = workdir / 'summary.json'
  if not path.is_file():
    return None
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as error:
    raise ValueError(f'{path} is not valid JSON ({error}); re-run --mode=evaluate.') from error


def _number(value) -> float:
  """A CSV cell as a float; empty or unparsable cells are NaN (e.g. AUC of one class)."""
  try:
    return float(value)
  except (TypeError, ValueError):
    return math.nan


def _class_names(rows: list[dict]) -> list[str]:
  return [column[len('prob_'):] for column in rows[0] if column.startswith('prob_')]


def _save(fig: mpl_figure.Figure, path: str | os.PathLike) -> None:
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  # 'tight' keeps legends placed outside the axes inside the image.
  fig.savefig(path, dpi=100, format='png', bbox_inches='tight')


# ---------------------------------------------------------------- 1. training curves

def _run_title(summary: dict | None, workdir: pathlib.Path) -> str:
  if not summary:
    return workdir.name
  weights = pathlib.Path(str(summary.get('weights', ''))).stem or 'random'
  unfreeze = ','.join(str(p.get('unfreeze', '')) for p in summary.get('phases', []))
  return (f"{summary.get('backbone', '?')} · {summary.get('strategy', '?')} · "
          f'weights {weights} · unfreeze {unfreeze or "?"}')


def _phase_starts(rows: list[dict]) -> list[tuple[float, str]]:
  """(x of the boundary before the phase's first epoch, phase name), in run order."""
  starts = []
  for index, row in enumerate(rows):
    if index == 0 or row['phase'] != rows[index - 1]['phase']:
      starts.append((int(row['epoch']) - 0.5, row['phase']))
  return starts


def training_curves(workdir: str | os.PathLike, path: str | os.PathLike) -> dict:
  """Loss, accuracy, AUC, precision, recall and F1 per epoch, train and val, one run.

  Reads ``workdir/metrics.csv`` (and summary.json for the title); phase
  boundaries are dashed vertical lines with the phase names on top. Returns
  {'panels': 6, 'lines': train/val lines drawn, 'phases': phase names in order,
  'boundaries': vertical lines drawn per panel}.
  """
  workdir = pathlib.Path(workdir)
  rows = _read_csv(workdir / 'metrics.csv', ('phase', 'epoch'))
  epochs = [int(row['epoch']) for row in rows]
  starts = _phase_starts(rows)
  fig = mpl_figure.Figure(figsize=(PANEL_INCHES * 3, PANEL_INCHES * 2))
  axes = fig.subplots(2, 3).ravel()
  lines = 0
  for axis, (metric, label) in zip(axes, CURVE_METRICS):
    columns = [f'{split}_{metric}' for split in ('train', 'val') if f'{split}_{metric}' in rows[0]]
    if not columns:
      raise ValueError(f'{workdir / "metrics.csv"} has neither train_{metric} nor val_{metric}.')
    for column in columns:
      axis.plot(epochs, [_number(row[column]) for row in rows], marker='.',
                label=column.split('_')[0])
      lines += 1
    for index, (x, name) in enumerate(starts):
      if index:  # no line before the first phase
        axis.axvline(x, color='gray', linestyle='--', linewidth=0.8)
      axis.text(x + 0.1, 0.98, name, transform=axis.get_xaxis_transform(), fontsize=7,
                va='top', color='dimgray')
    axis.set_title(label)
    axis.set_xlabel('epoch')
    axis.legend(fontsize=7, loc='lower left')
  fig.suptitle(_run_title(_read_summary(workdir), workdir), fontsize=10)
  _save(fig, path)
  return {'panels': len(CURVE_METRICS), 'lines': lines, 'phases': [name for _, name in starts],
          'boundaries': len(starts) - 1}


# ---------------------------------------------------------------- sweep tables

def _unfreeze_key(value: str):
  """Numbers ascending, then words ('all' after the numbers)."""
  return (0, int(value), '') if value.isdigit() else (1, 0, value)


def _weights_key(value: str):
  return (WEIGHTS_ORDER.index(value) if value in WEIGHTS_ORDER else len(WEIGHTS_ORDER), value)


def _finished_runs(results_csv: pathlib.Path, required: tuple[str, ...]) -> tuple[list, int]:
  """(rows of finished runs, number of other rows); failed runs have no numbers to draw."""
  rows = _read_csv(results_csv, ('backbone', *required))
  done = [row for row in rows if row.get('status', 'done') == 'done']
  if not done:
    raise ValueError(f'{results_csv} has no finished run (status "done"); nothing to draw.')
  return done, len(rows) - len(done)


def _groups(rows: list[dict], hue: str) -> tuple[list[str], list[str], dict]:
  """Networks (first-seen order), hue values (natural order), (network, hue) → rows."""
  networks = list(dict.fromkeys(row['backbone'] for row in rows))
  sort_key = _weights_key if hue == 'weights' else _unfreeze_key
  hues = sorted({row[hue] or 'n/a' for row in rows}, key=sort_key)
  grouped = {}
  for row in rows:
    grouped.setdefault((row['backbone'], row[hue] or 'n/a'), []).append(row)
  return networks, hues, grouped


def _bar_x(network_index: int, hue_index: int, hues: int) -> tuple[float, float]:
  """(centre, width) of one bar inside a network's group of ``hues`` bars."""
  width = 0.8 / hues
  return network_index - 0.4 + width * (hue_index + 0.5), width


def _mean(rows: list[dict], column: str) -> float:
  values = [_number(row.get(column)) for row in rows]
  values = [v for v in values if not math.isnan(v)]
  return float(np.mean(values)) if values else math.nan


def _finish_bars(fig, axis, networks, hues, hue_title: str) -> None:
  colors = colormaps['tab10']
  axis.set_xticks(range(len(networks)), networks)
  legend = axis.legend(
      handles=[mpl_patches.Patch(color=colors(i % 10), label=h) for i, h in enumerate(hues)],
      title=hue_title, fontsize=7, title_fontsize=8, loc='upper left',
      bbox_to_anchor=(1.01, 1.0))  # outside the axes: bars may reach any height
  # Kept as an artist so a second legend (the phases) can join it, unclipped outside.
  axis.add_artist(legend)
  legend.set_clip_on(False)
  fig.set_size_inches(max(5.0, 1.6 * len(networks) * max(1, len(hues)) ** 0.5 + 2), 4.0)


# ---------------------------------------------------------------- 2. training time

def training_time_bars(results_csv: str | os.PathLike, path: str | os.PathLike) -> dict:
  """Training time per network (x), unfrozen blocks (colour), phases stacked (hatches).

  Heights are the mean ``seconds_<phase>`` over the finished runs of each
  (backbone, unfreeze) pair (or ``train_seconds`` when the sweep wrote no
  per-phase columns). Returns {'segments': stacked pieces drawn, 'bars':
  {(backbone, unfreeze): total seconds}, 'phases': [...], 'excluded': rows not done}.
  """
  results_csv = pathlib.Path(results_csv)
  rows, excluded = _finished_runs(results_csv, ('unfreeze',))
  columns = [c for c in rows[0] if c.startswith('seconds_')] or ['train_seconds']
  phases = [c.removeprefix('seconds_') for c in columns]
  networks, hues, grouped = _groups(rows, 'unfreeze')
  fig = mpl_figure.Figure()
  axis = fig.subplots()
  colors, segments, totals = colormaps['tab10'], 0, {}
  for n, network in enumerate(networks):
    for h, hue in enumerate(hues):
      if (network, hue) not in grouped:
        continue
      x, width = _bar_x(n, h, len(hues))
      bottom = 0.0
      for p, column in enumerate(columns):
        seconds = _mean(grouped[network, hue], column)
        if math.isnan(seconds) or seconds <= 0:  # phase skipped (0 epochs) by these runs
          continue
        axis.bar(x, seconds, width, bottom=bottom, color=colors(h % 10), edgecolor='black',
                 hatch=PHASE_HATCHES[p % len(PHASE_HATCHES)], linewidth=0.6)
        bottom += seconds
        segments += 1
      totals[network, hue] = bottom
  _finish_bars(fig, axis, networks, hues, 'unfrozen blocks')
  axis.legend(handles=[mpl_patches.Patch(facecolor='white', edgecolor='black', label=phase,
                                         hatch=PHASE_HATCHES[p % len(PHASE_HATCHES)])
                       for p, phase in enumerate(phases)],
              title='phase', fontsize=7, title_fontsize=8, loc='lower left',
              bbox_to_anchor=(1.01, 0.0))
  axis.set_ylabel('training time (s, mean over runs)')
  axis.set_title('Training time by network and unfrozen blocks')
  _save(fig, path)
  return {'segments': segments, 'bars': totals, 'phases': phases, 'excluded': excluded}


# ---------------------------------------------------------------- 4. accuracy bars

def accuracy_bars(results_csv: str | os.PathLike, path: str | os.PathLike, *,
                  by: str = 'weights', metric: str = 'test_accuracy') -> dict:
  """``metric`` per network (x), coloured by initial weights or by unfrozen blocks.

  ``by='weights'`` compares ImageNet / autoencoder / random initialisation,
  ``by='unfreeze'`` the number of unfrozen blocks. Bars are the mean over the
  finished runs of each group (error bar: standard deviation when there are
  several). Returns {'bars': bars drawn, 'values': {(backbone, group): mean}}.
  """
  if by not in ACCURACY_BARS_BY:
    raise ValueError(f'Unknown by={by!r}; choose one of {ACCURACY_BARS_BY}.')
  results_csv = pathlib.Path(results_csv)
  rows, _ = _finished_runs(results_csv, (by, metric))
  networks, hues, grouped = _groups(rows, by)
  fig = mpl_figure.Figure()
  axis = fig.subplots()
  colors, values = colormaps['tab10'], {}
  for n, network in enumerate(networks):
    for h, hue in enumerate(hues):
      group = grouped.get((network, hue))
      mean = _mean(group, metric) if group else math.nan
      if math.isnan(mean):
        continue
      x, width = _bar_x(n, h, len(hues))
      spread = float(np.nanstd([_number(row[metric]) for row in group]))
      axis.bar(x, mean, width, color=colors(h % 10), edgecolor='black', linewidth=0.6,
               yerr=spread if len(group) > 1 else None, capsize=3)
      axis.text(x, mean + spread, f'{mean:.2f}', ha='center', va='bottom', fontsize=7)
      values[network, hue] = mean
  hue_title = 'initial weights' if by == 'weights' else 'unfrozen blocks'
  _finish_bars(fig, axis, networks, hues, hue_title)
  if values and max(values.values()) <= 1.0:
    axis.set_ylim(0.0, 1.1)  # room above the labels; metrics live in [0, 1]
  axis.set_ylabel(metric)
  axis.set_title(f'{metric} by network and {hue_title}')
  _save(fig, path)
  return {'bars': len(values), 'values': values}


# ---------------------------------------------------------------- 3. confusion matrices

def _confusion_of(workdir: pathlib.Path, split: str) -> dict:
  """summary.json's confusion for ``split``, else computed from predictions_<split>.csv."""
  section = (_read_summary(workdir) or {}).get(split)
  confusion = section.get('confusion') if isinstance(section, dict) else None
  if confusion:
    return confusion
  path = workdir / f'predictions_{split}.csv'
  if not path.is_file():
    raise FileNotFoundError(f'{workdir} has neither a {split} confusion matrix in '
                            f'summary.json nor {path.name}; evaluate the run first '
                            '(--mode=evaluate).')
  rows, labels, probs = predictions.read_predictions(path)
  return metrics_lib.confusion(labels, probs, _class_names(rows))


def _grid(count: int) -> tuple[mpl_figure.Figure, list]:
  """A figure of ``count`` panels, at most GRID_COLUMNS a row; spare axes hidden."""
  columns = min(count, GRID_COLUMNS)
  rows = math.ceil(count / columns)
  fig = mpl_figure.Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows))
  axes = fig.subplots(rows, columns, squeeze=False).ravel()
  for axis in axes[count:]:
    axis.set_axis_off()
  return fig, list(axes[:count])


def _check_runs(workdirs: dict) -> None:
  if not workdirs:
    raise ValueError('No runs given: pass {name: workdir}, e.g. {"resnet50": "runs/r50"}.')


def confusion_grid(workdirs: dict[str, str | os.PathLike], path: str | os.PathLike, *,
                   split: str = 'test') -> dict:
  """One confusion matrix per run (e.g. per network, plus 'ensemble'), counts and row %.

  Cells show the count and the row-normalised percentage (of the true class);
  colour follows the percentage. Returns {'panels': runs, 'counts': {name: counts}}.
  """
  _check_runs(workdirs)
  fig, axes = _grid(len(workdirs))
  counts = {}
  for axis, (name, workdir) in zip(axes, workdirs.items()):
    confusion = _confusion_of(pathlib.Path(workdir), split)
    classes, percent = confusion['classes'], np.asarray(confusion['row_percent'], float)
    counts[name] = confusion['counts']
    axis.imshow(percent, cmap='Blues', vmin=0.0, vmax=100.0)
    for (row, col), value in np.ndenumerate(percent):
      axis.text(col, row, f'{counts[name][row][col]}\n{value:.1f}%', ha='center',
                va='center', fontsize=8, color='white' if value > 50 else 'black')
    axis.set_xticks(range(len(classes)), classes, fontsize=8, rotation=30)
    axis.set_yticks(range(len(classes)), classes, fontsize=8)
    axis.set_xlabel('predicted')
    axis.set_ylabel('true')
    axis.set_title(f'{name} ({split})')
  _save(fig, path)
  return {'panels': len(axes), 'counts': counts}


# ---------------------------------------------------------------- 5. ROC curves

def roc_curves(workdirs: dict[str, str | os.PathLike], path: str | os.PathLike, *,
               split: str = 'test') -> dict:
  """ROC curves of several runs from their predictions_<split>.csv, AUC in the legend.

  Binary runs: one panel for the positive (second) class. Multi-class runs:
  one panel per class, one-vs-rest. One curve per run in each panel. A class
  absent (or alone) in a run's labels has no ROC: it is listed in 'skipped'.
  Returns {'panels', 'curves', 'aucs': {(name, class): auc}, 'skipped': [reasons]}.
  """
  _check_runs(workdirs)
  runs = {}
  for name, workdir in workdirs.items():
    rows, labels, probs = predictions.read_predictions(
        pathlib.Path(workdir) / f'predictions_{split}.csv')
    runs[name] = (_class_names(rows), labels, probs)
  positives = list(dict.fromkeys(
      c for classes, _, _ in runs.values() for c in (classes[1:] if len(classes) == 2
                                                      else classes)))
  fig, axes = _grid(len(positives))
  aucs, skipped = {}, []
  for axis, positive in zip(axes, positives):
    for name, (classes, labels, probs) in runs.items():
      if positive not in classes:
        continue
      truth = labels == classes.index(positive)
      if truth.all() or not truth.any():
        skipped.append(f'{name}: every {split} label is {"" if truth.all() else "not "}'
                       f'{positive}, so its ROC is undefined')
        continue
      fpr, tpr, _ = skm.roc_curve(truth, probs[:, classes.index(positive)])
      aucs[name, positive] = float(skm.auc(fpr, tpr))
      axis.plot(fpr, tpr, label=f'{name} (AUC {aucs[name, positive]:.3f})')
    axis.plot([0, 1], [0, 1], color='gray', linestyle=':', linewidth=0.8)
    axis.set_title(f'{positive} vs rest ({split})' if len(positives) > 1 else
                   f'ROC, positive class {positive} ({split})', fontsize=9)
    axis.set_xlabel('false positive rate')
    axis.set_ylabel('true positive rate')
    if any(key[1] == positive for key in aucs):
      axis.legend(fontsize=7, loc='lower right')
  if not aucs:
    raise ValueError(f'No ROC curve can be drawn: {"; ".join(skipped)}.')
  _save(fig, path)
  return {'panels': len(axes), 'curves': len(aucs), 'aucs': aucs, 'skipped': skipped}


# ---------------------------------------------------------------- 6. confident examples

def confident_ids(workdir: str | os.PathLike, *, k: int = 4,
                  split: str = 'test') -> dict[str, list[dict]]:
  """The k most confident right and k most confident wrong predictions of a run.

  Confidence is the probability of the predicted class. Returns {'right':
  [...], 'wrong': [...]}, each item {'id', 'true', 'pred', 'prob'}, most
  confident first, so a caller can load only the images it needs.
  """
  if k < 1:
    raise ValueError(f'k={k}: ask for at least one example of each kind.')
  rows, labels, probs = predictions.read_predictions(
      pathlib.Path(workdir) / f'predictions_{split}.csv')
  classes = _class_names(rows)
  predicted = probs.argmax(axis=1)
  confidence = probs[np.arange(len(rows)), predicted]
  chosen = {'right': [], 'wrong': []}
  for index in np.argsort(-confidence, kind='stable'):
    kind = 'right' if predicted[index] == labels[index] else 'wrong'
    if len(chosen[kind]) < k:
      chosen[kind].append({'id': rows[index]['id'], 'true': classes[labels[index]],
                           'pred': classes[predicted[index]],
                           'prob': float(confidence[index])})
  return chosen


def confident_examples(workdir: str | os.PathLike, images: dict, path: str | os.PathLike, *,
                       k: int = 4, split: str = 'test') -> dict:
  """Row 1: the k most confident right predictions; row 2: the k most confident wrong.

  ``images`` maps example id → 2-D array (the caller loads them; see
  ``confident_ids`` for which). Each panel is titled id, true and predicted
  class and the predicted class's probability. Returns {'panels', 'right', 'wrong'}.
  """
  chosen = confident_ids(workdir, k=k, split=split)
  missing = [item['id'] for kind in chosen.values() for item in kind if item['id'] not in images]
  if missing:
    raise ValueError(f'No image given for {missing} (from {split} predictions of {workdir}); '
                     'pass images for every id that confident_ids returns.')
  columns = max(1, *(len(items) for items in chosen.values()))
  fig = mpl_figure.Figure(figsize=(2.4 * columns, 2 * 2.8))
  axes = fig.subplots(2, columns, squeeze=False)
  for row, kind in enumerate(('right', 'wrong')):
    for col in range(columns):
      axis = axes[row, col]
      axis.set_xticks([])
      axis.set_yticks([])
      if col >= len(chosen[kind]):
        axis.set_axis_off()
        continue
      item = chosen[kind][col]
      axis.imshow(np.asarray(images[item['id']], np.float32), cmap='gray')
      axis.set_title(f"{item['id']}\ntrue {item['true']} · pred {item['pred']}\n"
                     f"p={item['prob']:.3f}", fontsize=7)
    axes[row, 0].set_ylabel(f'most confident {kind}')
    if not chosen[kind]:
      axes[row, 0].text(0.5, 0.5, f'no {kind} predictions', ha='center', va='center',
                        transform=axes[row, 0].transAxes)
  _save(fig, path)
  return {'panels': len(chosen['right']) + len(chosen['wrong']),
          'right': len(chosen['right']), 'wrong': len(chosen['wrong'])}
