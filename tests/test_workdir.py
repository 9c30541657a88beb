import json

import pytest

from mammojax import defaults, workdir


def test_same_config_resumes_other_config_is_refused_overwrite_restarts(tmp_path):
  config = defaults.base_config()
  workdir.prepare(tmp_path, config)
  (tmp_path / 'metrics.csv').write_text('old run')
  workdir.prepare(tmp_path, config)  # same config: resume, nothing deleted
  assert (tmp_path / 'metrics.csv').exists()
  config.data.patch_size = 128
  with pytest.raises(workdir.WorkdirConflict, match='data.patch_size: 64 → 128'):
    workdir.prepare(tmp_path, config)
  config.overwrite = True
  workdir.prepare(tmp_path, config)
  assert not (tmp_path / 'metrics.csv').exists()
  assert json.loads((tmp_path / 'config.json').read_text())['data']['patch_size'] == 128
