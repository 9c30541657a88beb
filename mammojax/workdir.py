"""A run's workdir: the config it was started with, and refusing to mix runs."""

import json
import pathlib
import shutil

import jax

# Fields that may change between a run and its resumption.
RESUMABLE_FIELDS = ('overwrite',)


def config_to_dict(config) -> dict:
  """The resolved config as plain JSON-able values."""
  return json.loads(config.to_json_best_effort(sort_keys=True))


def _flatten(tree: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict) and value:
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def config_differences(old: dict, new: dict) -> list[str]:
  """Lines 'field: old → new' for every field that differs."""
  old_flat, new_flat = _flatten(old), _flatten(new)
  lines = []
  for key in sorted(set(old_flat) | set(new_flat)):
    if key in RESUMABLE_FIELDS:
      continue
    if old_flat.get(key, '<absent>') != new_flat.get(key, '<absent>'):
      lines.append(f'{key}: {old_flat.get(key, "<absent>")!r} → {new_flat.get(key, "<absent>")!r}')
  return lines


class WorkdirConflict(ValueError):
  """The workdir holds a run with another config."""


def prepare(workdir: str | pathlib.Path, config) -> pathlib.Path:
  """Creates the workdir or checks that it holds a run of this same config.

  A different config is refused unless ``config.overwrite`` is True, in which
  case the old run is deleted first: never a silent mix of two runs.
  """
  workdir = pathlib.Path(workdir)
  stored = workdir / 'config.json'
  current = config_to_dict(config)
  if stored.exists():
    differences = config_differences(json.loads(stored.read_text()), current)
    if differences and not config.overwrite:
      raise WorkdirConflict(
          f'{workdir} holds a run with a different config:\n  ' + '\n  '.join(differences)
          + '\nUse a new --workdir to keep both runs, the same config to resume, or '
          '--config.overwrite=True to delete the old run and start again.')
    if differences and jax.process_index() == 0:
      shutil.rmtree(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0 and not stored.exists():
    stored.write_text(json.dumps(current, indent=2, sort_keys=True))
  return workdir


def write_json(path: pathlib.Path, value) -> None:
  """Writes JSON (process 0 only) through a temporary file, atomically."""
  if jax.process_index() != 0:
    return
  scratch = path.with_suffix(path.suffix + '.tmp')
  scratch.write_text(json.dumps(value, indent=2, sort_keys=True, default=float))
  scratch.replace(path)


def read_json(path: pathlib.Path):
  """A JSON file a run wrote (config, summary, report)."""
  return json.loads(pathlib.Path(path).read_text())
