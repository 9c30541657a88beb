"""--mode=predict scores a folder of images with a finished run."""

import csv

import cv2
import numpy as np

from tests.conftest import run_main


def test_predict_mode_writes_one_row_per_readable_image(smoke_run, tmp_path):
  workdir, _ = smoke_run
  images = tmp_path / 'new_images'
  (images / 'nested').mkdir(parents=True)
  rng = np.random.default_rng(0)
  for name in ('a.png', 'b.jpg', 'nested/c.png'):
    cv2.imwrite(str(images / name), rng.integers(0, 255, (50, 40), dtype=np.uint8))
  (images / 'broken.png').write_bytes(b'truncated')
  output = tmp_path / 'scores.csv'
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={workdir}',
                    '--mode=predict', f'--input={images}', f'--output={output}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'broken.png' in result.stderr  # skipped with its reason, not silently
  with open(output, newline='') as file:
    rows = list(csv.DictReader(file))
  assert sorted(r['path'].rsplit('/', 1)[-1] for r in rows) == ['a.png', 'b.jpg', 'c.png']
  for row in rows:
    total = float(row['prob_benign']) + float(row['prob_malignant'])
    assert abs(total - 1.0) < 1e-5
    assert row['prediction'] in ('benign', 'malignant')


def test_predict_on_an_untrained_workdir_is_explained(tmp_path):
  (tmp_path / 'imgs').mkdir()
  cv2.imwrite(str(tmp_path / 'imgs' / 'a.png'), np.zeros((8, 8), np.uint8))
  result = run_main('--config=configs/finetune.py:smoke', f'--workdir={tmp_path / "none"}',
                    '--mode=predict', f'--input={tmp_path / "imgs"}')
  assert result.returncode == 2
  assert 'no trained run' in result.stderr
