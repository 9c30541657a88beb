"""Markdown reports from the files runs and sweeps write (summary.json, results.csv, plots/).

Tables follow the researchers' notes: rows = one setting (e.g. augmentation
strategy), columns = another (e.g. unfrozen blocks), cells = a test metric,
the best in bold. Everything here reads and writes files or plain values,
never live runs, so a report can be rebuilt at any time.
"""

import csv
import json
import math
import os
import pathlib

MISSING = '—'
RUN_COLUMNS = ('run', 'backbone', 'strategy', 'weights', 'trainable params', 'train time',
               'val AUC', 'test accuracy', 'test AUC', 'test F1')


def sort_key(value) -> tuple:
  """Numeric-aware order: numbers by value ('2' < '10'), then text ('all')."""
  text = str(value)
  try:
    number = float(text)
  except ValueError:
    return (1, 0.0, text)
  return (0, number, text) if math.isfinite(number) else (1, 0.0, text)


def _number(value, where: str) -> float | None:
  """The cell's value as a float; None when missing, empty or NaN (undefined metric)."""
  if value is None or (isinstance(value, str) and not value.strip()):
    return None
  try:
    number = float(value)
  except (TypeError, ValueError) as error:
    raise ValueError(f'{where}: {value!r} is not a number.') from error
  return None if math.isnan(number) else number


def _escape(text) -> str:
  return str(text).replace('|', '\\|')  # a bare pipe would split the markdown cell


def _markdown(header: list[str], body: list[list[str]], align_right_from: int = 1) -> str:
  rule = ['---' if i < align_right_from else '---:' for i in range(len(header))]
  lines = [header, rule, *body]
  return '\n'.join('| ' + ' | '.join(cells) + ' |' for cells in lines)


def _collect_cells(rows, row_key: str, col_key: str, value_key: str) -> dict:
  cells = {}
  for i, row in enumerate(rows):
    for key in (row_key, col_key):
      if row.get(key) in (None, ''):
        raise ValueError(f'Results row {i} has no {key!r}: {row}')
    cell = (str(row[row_key]), str(row[col_key]))
    if cell in cells:
      raise ValueError(f'Two results rows for {row_key}={cell[0]}, {col_key}={cell[1]}; '
                       'filter or average the rows (e.g. over seeds) before tabulating.')
    cells[cell] = _number(row.get(value_key), f'Results row {i}, {value_key!r}')
  return cells


def results_table(rows, *, row_key: str, col_key: str, value_key: str, fmt: str = '{:.4f}',
                  best: str = 'max') -> str:
  """A markdown grid of ``value_key`` by ``row_key`` × ``col_key``, the best cell in bold.

  Rows and columns are sorted numeric-aware ('2' < '10' < 'all'); missing or
  undefined values show '—'. The best is judged on the values as shown, so
  cells that read the same are all bold. ``best`` is 'max' or 'min' (losses).
  """
  if best not in ('max', 'min'):
    raise ValueError(f"best={best!r}; use 'max' (accuracy, AUC) or 'min' (loss).")
  cells = _collect_cells(rows, row_key, col_key, value_key)
  if not cells:
    return '_No results._'
  row_labels = sorted({r for r, _ in cells}, key=sort_key)
  col_labels = sorted({c for _, c in cells}, key=sort_key)
  values = [v for v in cells.values() if v is not None]
  best_text = fmt.format((max if best == 'max' else min)(values)) if values else None
  body = []
  for r in row_labels:
    texts = [MISSING if cells.get((r, c)) is None else fmt.format(cells[(r, c)])
             for c in col_labels]
    body.append([_escape(r), *(f'**{t}**' if t == best_text else t for t in texts)])
  header = [f'{_escape(row_key)} \\ {_escape(col_key)}', *map(_escape, col_labels)]
  return _markdown(header, body)


def format_seconds(seconds) -> str:
  """'12.3 s', '4m05s' or '1h02m'; '—' when unknown."""
  seconds = _number(seconds, 'train time')
  if seconds is None:
    return MISSING
  if seconds < 60:
    return f'{seconds:.1f} s'
  minutes, secs = divmod(int(round(seconds)), 60)
  if minutes < 60:
    return f'{minutes}m{secs:02d}s'
  return f'{minutes // 60}h{minutes % 60:02d}m'


def _metric(value) -> str:
  number = _number(value, 'metric')
  return MISSING if number is None else f'{number:.4f}'


def _run_cells(name: str, summary: dict) -> list[str]:
  strategy = summary.get('strategy', '')
  detail = summary.get('method') or summary.get('classifier')  # ensemble / classical runs
  phases = summary.get('phases') or [{}]
  params = phases[-1].get('trainable_params')
  val, test = summary.get('val', {}), summary.get('test', {})
  texts = [name, summary.get('backbone'), f'{strategy} ({detail})' if detail else strategy,
           summary.get('weights'), f'{int(params):,}' if params not in (None, '') else None,
           format_seconds(summary.get('train_seconds')),
           _metric(val.get('auc', summary.get('best_val_auc'))), _metric(test.get('accuracy')),
           _metric(test.get('auc')), _metric(test.get('f1'))]
  return [MISSING if t in (None, '') else _escape(t) for t in texts]


def run_metrics_table(summaries: dict) -> str:
  """A markdown row per run (name → summary.json dict), in the order given.

  Trainable parameters are the last phase's; the val AUC is the best checkpoint's.
  """
  if not summaries:
    return '_No runs._'
  return _markdown(list(RUN_COLUMNS),
                   [_run_cells(name, summary) for name, summary in summaries.items()],
                   align_right_from=4)


def read_summaries(workdirs) -> dict:
  """{folder name: summary.json} of finished runs, for ``run_metrics_table``."""
  summaries = {}
  for workdir in map(pathlib.Path, workdirs):
    path = workdir / 'summary.json'
    if not path.is_file():
      raise FileNotFoundError(f'{path} not found: {workdir} is not a finished run.')
    try:
      summaries[workdir.name] = json.loads(path.read_text())
    except json.JSONDecodeError as error:
      raise ValueError(f'{path} is not valid JSON ({error}); re-run its evaluation.') from error
  return summaries


def _relative(figure: pathlib.Path, folder: pathlib.Path) -> str:
  return pathlib.Path(os.path.relpath(figure.absolute(), folder.absolute())).as_posix()


def _link(figure: pathlib.Path, folder: pathlib.Path) -> str:
  link = _relative(figure, folder)
  return f'<{link}>' if any(c in link for c in ' ()') else link  # CommonMark-safe target


def _figure_lines(figures, folder: pathlib.Path) -> list[str]:
  figures = [pathlib.Path(f) for f in figures]
  lines = [f'![{f.stem}]({_link(f, folder)})\n' for f in figures if f.is_file()]
  missing = [f for f in figures if not f.is_file()]
  if missing:
    lines.append('Missing figures (not written by the run):\n')
    lines.extend(f'- `{_relative(f, folder)}`' for f in missing)
    lines.append('')
  return lines


def write_report(path, *, title: str, sections) -> pathlib.Path:
  """Writes report.md: a title and (heading, markdown text | figure paths) sections.

  Figures (paths as usual: relative to the current folder, or absolute) are
  linked relative to the report's folder, so the report survives moving the
  run; figures that do not exist are listed as missing instead.
  """
  path = pathlib.Path(path)
  lines = [f'# {title}', '']
  for heading, content in sections:
    lines += [f'## {heading}', '']
    if isinstance(content, str):
      lines += [content.rstrip(), '']
    elif isinstance(content, os.PathLike):
      lines += _figure_lines([content], path.parent)
    else:
      lines += _figure_lines(content, path.parent)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text('\n'.join(lines).rstrip() + '\n')
  return path


def read_results_csv(path) -> list[dict]:
  """A sweep's results.csv as dicts of strings (empty cells are '')."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path} not found; run the sweep first (it writes results.csv).')
  with open(path, newline='') as file:
    return [dict(row) for row in csv.DictReader(file)]


def write_results_csv(path, rows) -> None:
  """results.csv with the union of the rows' columns, in first-seen order (atomic)."""
  path = pathlib.Path(path)
  columns = list(dict.fromkeys(key for row in rows for key in row))
  scratch = path.with_suffix(path.suffix + '.tmp')  # a killed sweep keeps the old table
  with open(scratch, 'w', newline='') as file:
    writer = csv.DictWriter(file, fieldnames=columns, restval='')
    writer.writeheader()
    writer.writerows(rows)
  os.replace(scratch, path)
