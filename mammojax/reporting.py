"""report.md and plots/ for a run, a sweep or an ensemble — from the files they wrote.

Written at the end of every classification run, sweep and ensemble, and on
demand with ``--mode=report`` (which redraws everything that needs only
files). A person opens report.md and sees the run or the grid at a glance.
"""

import logging
import pathlib

import jax

from mammojax import workdir as workdir_lib
from mammojax.evaluation import ensemble, gradcam, plots, report

SWEEP_TABLES = (('augmentation', 'unfreeze', 'test_accuracy'),
                ('augmentation', 'unfreeze', 'test_auc'),
                ('backbone', 'weights', 'test_auc'))


def _try(name: str, draw) -> bool:
  """Draws one figure; a figure the data cannot support (one class, no run) is logged."""
  try:
    draw()
    return True
  except ValueError as error:
    logging.warning('Figure %s not drawn: %s', name, error)
    return False


def run_figures(workdir: pathlib.Path, name: str) -> list[pathlib.Path]:
  """Training curves, confusion matrices and ROC of one run (files only)."""
  out = workdir / 'plots'
  drawn = []
  figures = {
      'training_curves.png': lambda p: plots.training_curves(workdir, p),
      'confusion_val.png': lambda p: plots.confusion_grid({name: workdir}, p, split='val'),
      'confusion_test.png': lambda p: plots.confusion_grid({name: workdir}, p, split='test'),
      'roc_test.png': lambda p: plots.roc_curves({name: workdir}, p, split='test'),
  }
  for file_name, draw in figures.items():
    if (workdir / 'metrics.csv').exists() or file_name != 'training_curves.png':
      if _try(file_name, lambda d=draw, f=file_name: d(out / f)):
        drawn.append(out / file_name)
  return drawn


def example_figures(run, best: dict, workdir: pathlib.Path) -> list[pathlib.Path]:
  """The most confident right and wrong test examples, and their Grad-CAM maps."""
  out = workdir / 'plots'
  chosen = plots.confident_ids(workdir)
  picks = chosen['right'] + chosen['wrong']
  index = {record['id']: i for i, record in enumerate(run.data.test.records)}
  rows = [index[p['id']] for p in picks if p['id'] in index]
  if not rows:
    return []
  images = run.data.test.images[rows]
  drawn = []
  if _try('confident_examples.png', lambda: plots.confident_examples(
      workdir, {p['id']: images[i, ..., 0] for i, p in enumerate(picks)},
      out / 'confident_examples.png')):
    drawn.append(out / 'confident_examples.png')

  def draw_gradcam():
    heat = gradcam.grad_cam(run.graphdef, best['params'], best['batch_stats'], images)
    titles = [f'{p["true"]} → {p["pred"]} ({p["prob"]:.2f})' for p in picks]
    gradcam.save_gradcam_figure(images[..., 0], heat, out / 'gradcam.png', titles=titles)
  if _try('gradcam.png', draw_gradcam):
    drawn.append(out / 'gradcam.png')
  return drawn


def write_run_report(workdir, *, extra_figures=()) -> pathlib.Path:
  """report.md of one run (or ensemble): its metrics table and every figure in plots/."""
  workdir = pathlib.Path(workdir)
  summary = workdir_lib.read_json(workdir / 'summary.json')
  name = summary.get('backbone', workdir.name)
  run_figures(workdir, name)
  sections = [('Metrics', report.run_metrics_table({workdir.name: summary}))]
  if 'best_single' in summary:
    sections.append(('Best single member', report.run_metrics_table(
        {pathlib.Path(summary['best_single']['workdir']).name: summary['best_single']})))
  figures = sorted(set((workdir / 'plots').glob('*.png')) | set(map(pathlib.Path,
                                                                    extra_figures)))
  sections.append(('Figures', figures))
  return report.write_report(workdir / 'report.md', title=f'Run {workdir.name}',
                             sections=sections)


def _scores_table(summary: dict) -> str:
  """Validation and test scores of a segmentation or autoencoder run, as markdown."""
  keys = [k for k, v in summary.get('test', summary.get('val', {})).items()
          if isinstance(v, (int, float))]
  lines = ['| split | ' + ' | '.join(keys) + ' |', '| --- |' + ' ---: |' * len(keys)]
  for split in ('val', 'test'):
    if split in summary:
      cells = [f'{summary[split].get(k, float("nan")):.4f}' for k in keys]
      lines.append(f'| {split} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def write_unet_report(workdir) -> pathlib.Path:
  """report.md of a segmentation or autoencoder run: its scores and every figure."""
  workdir = pathlib.Path(workdir)
  summary = workdir_lib.read_json(workdir / 'summary.json')
  details = {k: summary[k] for k in ('task', 'architecture', 'threshold', 'best_epoch',
                                     'epochs_run', 'train_seconds') if k in summary}
  sections = [('Run', '\n'.join(f'- {k}: {v}' for k, v in details.items())),
              ('Scores', _scores_table(summary)),
              ('Figures', sorted((workdir / 'plots').glob('*.png')))]
  return report.write_report(workdir / 'report.md', title=f'Run {workdir.name}',
                             sections=sections)


def write_sweep_report(workdir) -> pathlib.Path:
  """report.md of a sweep: result tables, per-run table, grid figures, curves per run."""
  workdir = pathlib.Path(workdir)
  rows = report.read_results_csv(workdir / 'results.csv')
  done = [row for row in rows if row['status'] == 'done']
  out = workdir / 'plots'
  sections = []
  for row_key, col_key, value_key in SWEEP_TABLES:
    if len({r[row_key] for r in done}) * len({r[col_key] for r in done}) > 1:
      sections.append((f'{value_key} by {row_key} × {col_key}', report.results_table(
          done, row_key=row_key, col_key=col_key, value_key=value_key)))
  runs = {row['run']: pathlib.Path(row['workdir']) for row in done}
  sections.append(('Runs', report.run_metrics_table(report.read_summaries(runs.values()))))
  failed = [f'- `{row["run"]}`: {row["error"]}' for row in rows if row['status'] == 'failed']
  if failed:
    sections.append(('Failed points', '\n'.join(failed)))
  _try('training_time.png', lambda: plots.training_time_bars(workdir / 'results.csv',
                                                             out / 'training_time.png'))
  for by in ('weights', 'unfreeze'):
    _try(f'accuracy_by_{by}.png', lambda b=by: plots.accuracy_bars(
        workdir / 'results.csv', out / f'accuracy_by_{b}.png', by=b))
  _try('confusion_grid.png', lambda: plots.confusion_grid(runs, out / 'confusion_grid.png'))
  _try('roc_curves.png', lambda: plots.roc_curves(runs, out / 'roc_curves.png'))
  curves = []
  for name, run_dir in runs.items():
    if _try(f'{name} curves', lambda d=run_dir: plots.training_curves(
        d, d / 'plots' / 'training_curves.png')):
      curves.append(run_dir / 'plots' / 'training_curves.png')
  sections.append(('Figures', sorted(out.glob('*.png'))))
  sections.append(('Training curves per run', curves))
  return report.write_report(workdir / 'report.md', title=f'Sweep {workdir.name}',
                             sections=sections)


def ensemble_run(config, workdir) -> dict:
  """``--mode=ensemble``: fits the members' ensemble and reports it beside them."""
  members = [m.strip() for m in config.ensemble.members.split(',') if m.strip()]
  if len(members) < 2:
    raise ValueError('--config.ensemble.members needs at least two run workdirs, '
                     'comma-separated.')
  workdir = workdir_lib.prepare(workdir, config)
  if jax.process_index() != 0:
    return {}
  summary = ensemble.evaluate_ensemble(members, workdir, method=config.ensemble.method,
                                       seed=config.seed)
  named = {pathlib.Path(m).name: pathlib.Path(m) for m in members}
  _try('members_confusion.png', lambda: plots.confusion_grid(
      {**named, 'ensemble': workdir}, workdir / 'plots' / 'members_confusion.png'))
  _try('members_roc.png', lambda: plots.roc_curves(
      {**named, 'ensemble': workdir}, workdir / 'plots' / 'members_roc.png'))
  write_run_report(workdir)
  return summary


def report_mode(config, workdir) -> pathlib.Path:
  """``--mode=report``: redraws report.md and plots/ of a sweep or a run."""
  del config
  workdir = pathlib.Path(workdir)
  if (workdir / 'results.csv').exists():
    return write_sweep_report(workdir)
  if (workdir / 'summary.json').exists():
    task = workdir_lib.read_json(workdir / 'summary.json').get('task', 'classification')
    if task in ('segmentation', 'autoencoder'):
      return write_unet_report(workdir)
    return write_run_report(workdir)
  raise ValueError(f'{workdir} holds neither a finished run (summary.json) nor a sweep '
                   '(results.csv).')

