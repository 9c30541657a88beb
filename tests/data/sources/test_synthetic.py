"""Tests of the synthetic CBIS-DDSM-layout set."""

import csv
import os
import pathlib
import socket

import cv2
import numpy as np
import pytest

from mammojax.data.sources import synthetic

# Small and fast; lesion sizes scale down with the image.
SMALL = dict(num_patients=12, seed=3, image_height=192, image_width=152)

MASS_HEADER = ("patient_id,breast density,left or right breast,image view,abnormality id,"
               "abnormality type,mass shape,mass margins,assessment,pathology,subtlety,"
               "image file path,cropped image file path,ROI mask file path")
CALC_HEADER = ("patient_id,breast_density,left or right breast,image view,abnormality id,"
               "abnormality type,calc type,calc distribution,assessment,pathology,subtlety,"
               "image file path,cropped image file path,ROI mask file path")
CSV_HEADERS = {
    "mass_case_description_train_set.csv": MASS_HEADER,
    "mass_case_description_test_set.csv": MASS_HEADER,
    "calc_case_description_train_set.csv": CALC_HEADER,
    "calc_case_description_test_set.csv": CALC_HEADER,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> pathlib.Path:
  return synthetic.ensure_synthetic_cbis_ddsm(tmp_path_factory.mktemp("synthetic"), **SMALL)


def read_rows(folder: pathlib.Path, *, split: str | None = None) -> list[dict]:
  rows = []
  for name in CSV_HEADERS:
    if split is None or f"_{split}_set" in name:
      with open(folder / name, newline="") as handle:
        rows += list(csv.DictReader(handle))
  return rows


def folder_contents(folder: pathlib.Path) -> dict[str, bytes]:
  return {
      str(path.relative_to(folder)): path.read_bytes()
      for path in sorted(folder.rglob("*"))
      if path.is_file()
  }


def test_generation_is_byte_identical(tmp_path, dataset):
  again = synthetic.ensure_synthetic_cbis_ddsm(tmp_path, **SMALL)
  assert again.name == dataset.name
  first, second = folder_contents(dataset), folder_contents(again)
  assert sorted(first) == sorted(second)
  assert all(first[name] == second[name] for name in first)
  assert len(first) > 20


def test_folder_name_encodes_parameters(dataset):
  assert dataset.name == "synthetic_cbis_ddsm_v2_p12_s3_192x152"
  assert synthetic.is_complete(dataset)


def test_csv_headers_are_the_cbis_ddsm_ones(dataset):
  for name, header in CSV_HEADERS.items():
    with open(dataset / name, newline="") as handle:
      assert handle.readline().rstrip("\r\n") == header, name


def test_patients_never_in_both_splits(dataset):
  train = {row["patient_id"] for row in read_rows(dataset, split="train")}
  test = {row["patient_id"] for row in read_rows(dataset, split="test")}
  assert train and test
  assert not train & test
  assert len(train) > len(test)


def test_paths_follow_the_cbis_ddsm_pattern(dataset):
  for row in read_rows(dataset):
    prefix = row["image file path"].split("_P_")[0]
    assert prefix in {"Mass-Training", "Mass-Test", "Calc-Training", "Calc-Test"}
    side, view = row["left or right breast"], row["image view"]
    image_key = f"{prefix}_{row['patient_id']}_{side}_{view}"
    assert row["image file path"] == f"{image_key}/full/000000.png"
    roi = f"{image_key}_{row['abnormality id']}/roi"
    assert row["cropped image file path"] == f"{roi}/000000.png"
    assert row["ROI mask file path"] == f"{roi}/000001.png"


def test_masks_are_binary_image_sized_and_lesions_stand_out(dataset):
  for row in read_rows(dataset):
    image = cv2.imread(str(dataset / row["image file path"]), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(dataset / row["ROI mask file path"]), cv2.IMREAD_UNCHANGED)
    crop = cv2.imread(str(dataset / row["cropped image file path"]), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint8 and image.ndim == 2
    assert mask.shape == image.shape
    assert set(np.unique(mask)) == {0, 255}
    x, y, width, height = cv2.boundingRect(mask)
    np.testing.assert_array_equal(crop, image[y:y + height, x:x + width])
    assert lesion_stands_out(image, mask, row["abnormality type"]), row["ROI mask file path"]


def lesion_stands_out(image: np.ndarray, mask: np.ndarray, abnormality_type: str) -> bool:
  """A mass is brighter than the tissue around it; a calc mask holds more bright specks."""
  inside = mask > 0
  ring = (cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0) & ~inside
  if abnormality_type == "mass":
    return image[inside].mean() - image[ring].mean() > 2.0
  # Sparse dots barely move the plain mean, so compare small-bright-detail energy.
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
  specks = cv2.morphologyEx(image, cv2.MORPH_TOPHAT, kernel).astype(float)
  return specks[inside].mean() > 1.25 * specks[ring].mean()


def test_masks_of_one_image_do_not_overlap(dataset):
  by_image = {}
  for row in read_rows(dataset):
    mask = cv2.imread(str(dataset / row["ROI mask file path"]), cv2.IMREAD_GRAYSCALE)
    by_image.setdefault(row["image file path"], []).append(mask > 0)
  assert any(len(masks) > 1 for masks in by_image.values())
  for masks in by_image.values():
    assert np.sum(masks, axis=0).max() == 1


def test_breast_lies_on_its_laterality_side(dataset):
  for row in read_rows(dataset):
    image = cv2.imread(str(dataset / row["image file path"]), cv2.IMREAD_GRAYSCALE)
    left, right = np.array_split(image.astype(float), 2, axis=1)
    expected_brighter = left if row["left or right breast"] == "LEFT" else right
    assert expected_brighter.mean() == max(left.mean(), right.mean())


def test_both_classes_and_both_types_are_present(dataset):
  rows = read_rows(dataset)
  assert {row["abnormality type"] for row in rows} == {"mass", "calcification"}
  pathologies = {row["pathology"] for row in rows}
  assert "MALIGNANT" in pathologies and pathologies & {"BENIGN", "BENIGN_WITHOUT_CALLBACK"}
  assert pathologies <= {"MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK"}
  for row in rows:
    assessment = int(row["assessment"])
    assert (assessment >= 4) if row["pathology"] == "MALIGNANT" else (2 <= assessment <= 4)
    assert 1 <= int(row["subtlety"]) <= 5


def test_second_call_reuses_the_set(dataset, monkeypatch):
  before = {path: path.stat().st_mtime_ns for path in dataset.rglob("*")}

  def must_not_run(*args, **kwargs):
    raise AssertionError("the complete set was generated again")

  monkeypatch.setattr(synthetic, "_write_dataset", must_not_run)
  assert synthetic.ensure_synthetic_cbis_ddsm(dataset.parent, **SMALL) == dataset
  assert {path: path.stat().st_mtime_ns for path in dataset.rglob("*")} == before


def test_failed_generation_leaves_nothing_to_reuse(tmp_path, monkeypatch):
  real_write = synthetic._write_dataset

  def write_then_die(folder, *args):
    real_write(folder, *args)
    (folder / synthetic.COMPLETE_MARKER).unlink()
    raise KeyboardInterrupt  # as if killed before the end

  monkeypatch.setattr(synthetic, "_write_dataset", write_then_die)
  with pytest.raises(KeyboardInterrupt):
    synthetic.ensure_synthetic_cbis_ddsm(tmp_path, **SMALL)
  assert list(tmp_path.iterdir()) == []
  monkeypatch.setattr(synthetic, "_write_dataset", real_write)
  assert synthetic.is_complete(synthetic.ensure_synthetic_cbis_ddsm(tmp_path, **SMALL))


def test_leftover_temp_folder_of_a_killed_run_is_harmless(tmp_path):
  name = synthetic.dataset_folder_name(**SMALL)
  dead_pid = 2**22 + 12345  # above Linux's pid_max: no such process
  leftover = tmp_path / f".tmp-{name}-{socket.gethostname()}-{dead_pid}-deadbeef"
  (leftover / "Mass-Training_P_00001_LEFT_CC" / "full").mkdir(parents=True)
  (leftover / "mass_case_description_train_set.csv").write_text("patient_id\n")
  folder = synthetic.ensure_synthetic_cbis_ddsm(tmp_path, **SMALL)
  assert synthetic.is_complete(folder)
  assert len(read_rows(folder)) > 0
  assert not leftover.exists()


def test_unmarked_folder_at_the_final_name_is_regenerated(tmp_path):
  final = tmp_path / synthetic.dataset_folder_name(**SMALL)
  final.mkdir()
  (final / "mass_case_description_train_set.csv").write_text("half written\n")
  assert synthetic.ensure_synthetic_cbis_ddsm(tmp_path, **SMALL) == final
  assert synthetic.is_complete(final)
  assert "half written" not in (final / "mass_case_description_train_set.csv").read_text()


def test_losing_a_publication_race_keeps_the_winner(tmp_path, monkeypatch):
  final = tmp_path / synthetic.dataset_folder_name(**SMALL)
  real_write = synthetic._write_dataset

  def write_while_another_caller_publishes(folder, *args):
    real_write(folder, *args)
    other = tmp_path / "other-caller"
    real_write(other, *args)
    (other / "winner").touch()
    os.replace(other, final)

  monkeypatch.setattr(synthetic, "_write_dataset", write_while_another_caller_publishes)
  assert synthetic.ensure_synthetic_cbis_ddsm(tmp_path, **SMALL) == final
  assert (final / "winner").exists() and synthetic.is_complete(final)
  assert [path.name for path in tmp_path.iterdir()] == [final.name]


@pytest.mark.parametrize(
    "overrides, error",
    [
        (dict(num_patients=0), ValueError),
        (dict(seed=-1), ValueError),
        (dict(image_height=32), ValueError),
        (dict(image_width=1.5), TypeError),
    ],
)
def test_bad_parameters_are_rejected(tmp_path, overrides, error):
  with pytest.raises(error):
    synthetic.ensure_synthetic_cbis_ddsm(tmp_path, **{**SMALL, **overrides})
  assert not any(os.scandir(tmp_path))
