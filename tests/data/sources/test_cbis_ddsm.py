"""Tests of the CBIS-DDSM case-description reader."""

import csv
import os
import pathlib

import cv2
import numpy as np
import pytest

from mammojax.data.sources.cbis_ddsm import read_cbis_ddsm
from mammojax.data.sources.synthetic import ensure_synthetic_cbis_ddsm

MASS_TRAIN_CSV = "mass_case_description_train_set.csv"
CALC_TEST_CSV = "calc_case_description_test_set.csv"
HEADER = [
    "patient_id",
    "breast density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]  # fmt: skip
RECORD_KEYS = {
    "id",
    "image_id",
    "image_path",
    "mask_paths",
    "crop_path",
    "label",
    "pathology",
    "abnormality_type",
    "abnormality_id",
    "patient_id",
    "laterality",
    "view",
    "split",
    "source",
}  # fmt: skip


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> pathlib.Path:
  return ensure_synthetic_cbis_ddsm(
      tmp_path_factory.mktemp("synthetic"),
      num_patients=12,
      seed=5,
      image_height=160,
      image_width=128,
  )  # fmt: skip


# ---------------------------------------------------------------- synthetic set


def test_one_record_per_csv_row(synthetic_root):
  records, skipped = read_cbis_ddsm(synthetic_root)
  rows = []
  for csv_path in sorted(synthetic_root.glob("*_case_description_*_set.csv")):
    with open(csv_path, newline="") as handle:
      rows += list(csv.DictReader(handle))
  assert skipped == []
  assert len(records) == len(rows) > 0
  assert len({record["id"] for record in records}) == len(records)
  assert all(set(record) == RECORD_KEYS for record in records)


def test_labels_follow_pathology(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root)
  expected = {"BENIGN": 0, "BENIGN_WITHOUT_CALLBACK": 0, "MALIGNANT": 1}
  assert {record["label"] for record in records} == {0, 1}
  for record in records:
    assert record["label"] == expected[record["pathology"]]


def test_paths_are_absolute_existing_and_inside_root(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root)
  root = str(synthetic_root.resolve())
  for record in records:
    paths = [record["image_path"], record["crop_path"], *record["mask_paths"]]
    assert len(record["mask_paths"]) == 1
    for path in paths:
      assert isinstance(path, str) and os.path.isabs(path)
      assert os.path.isfile(path)
      assert os.path.commonpath([os.path.realpath(path), root]) == root


def test_record_fields_agree_with_the_id(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root)
  prefixes = {
      ("mass", "train"): "Mass-Training",
      ("mass", "test"): "Mass-Test",
      ("calcification", "train"): "Calc-Training",
      ("calcification", "test"): "Calc-Test",
  }  # fmt: skip
  for record in records:
    image_id = f"{record['patient_id']}_{record['laterality']}_{record['view']}"
    prefix = prefixes[(record["abnormality_type"], record["split"])]
    assert record["image_id"] == image_id
    assert record["id"] == f"{prefix}_{image_id}_{record['abnormality_id']}"
    assert record["source"] == "cbis_ddsm"
    assert f"{os.sep}{prefix}_{image_id}{os.sep}" in record["image_path"]


def test_splits_and_types_can_be_selected(synthetic_root):
  records, _ = read_cbis_ddsm(synthetic_root, splits=("test",), abnormality_types=("mass",))
  everything, _ = read_cbis_ddsm(synthetic_root)
  assert records
  assert {(r["split"], r["abnormality_type"]) for r in records} == {("test", "mass")}
  assert len(records) < len(everything)


def test_bad_arguments_are_rejected(synthetic_root):
  with pytest.raises(ValueError, match="validation"):
    read_cbis_ddsm(synthetic_root, splits=("validation",))
  with pytest.raises(ValueError, match="sequence"):
    read_cbis_ddsm(synthetic_root, abnormality_types="mass")


# ---------------------------------------------------------------- hand-written fixtures


def write_png(path: pathlib.Path) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), np.full((8, 6), 128, np.uint8))


def write_csv(path: pathlib.Path, header: list[str], rows: list[list]) -> None:
  with open(path, "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(header)
    writer.writerows(rows)


def mass_row(patient="P_00001",
             side="LEFT",
             view="CC",
             abnormality_id=1,
             pathology="MALIGNANT",
             image=None,
             crop=None,
             mask=None) -> list:  # fmt: skip
  key = f"Mass-Training_{patient}_{side}_{view}"
  image = f"{key}/full/000000.png" if image is None else image
  crop = f"{key}_{abnormality_id}/roi/000000.png" if crop is None else crop
  mask = f"{key}_{abnormality_id}/roi/000001.png" if mask is None else mask
  return [
      patient, 3, side, view, abnormality_id, "mass", "IRREGULAR", "SPICULATED", 4, pathology, 3,
      image, crop, mask
  ]  # fmt: skip


def write_files_of(root: pathlib.Path, row: list) -> None:
  for relative in row[-3:]:
    write_png(root / relative.strip())


def read_mass_train(root: pathlib.Path):
  return read_cbis_ddsm(root, splits=("train",), abnormality_types=("mass",))


def test_stray_whitespace_and_newlines_are_stripped(tmp_path):
  clean = mass_row()
  write_files_of(tmp_path, clean)
  messy = [f"  {cell}\n" if isinstance(cell, str) else cell for cell in clean]
  messy[-1] = clean[-1] + "\n"  # as in the real CSV: a newline inside the quoted cell
  messy[-3] = clean[-3].replace("/full/", "/full/\r\n")  # even mid-path
  messy[9] = " MALIGNANT \r\n"
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [messy])
  assert '\n"' in (tmp_path / MASS_TRAIN_CSV).read_text()  # the cell really is multi-line
  records, skipped = read_mass_train(tmp_path)
  assert skipped == []
  (record,) = records
  assert record["id"] == "Mass-Training_P_00001_LEFT_CC_1"
  assert record["image_id"] == "P_00001_LEFT_CC"
  assert record["label"] == 1 and record["pathology"] == "MALIGNANT"
  assert record["mask_paths"] == [str(tmp_path / clean[-1])]
  assert record["image_path"] == str(tmp_path / clean[-3])
  assert record["crop_path"] == str(tmp_path / clean[-2])


def test_column_spellings_are_normalised(tmp_path):
  calc_header = [
      " Patient_ID", "breast_density", "Left or Right Breast ", "image_view", "abnormality_id",
      "abnormality type", "calc type", "calc distribution", "assessment", "PATHOLOGY", "subtlety",
      "image file path", "cropped image file path", "ROI_mask_file_path"
  ]  # fmt: skip
  row = mass_row(pathology="BENIGN_WITHOUT_CALLBACK")
  row[-3:] = [path.replace("Mass-Training", "Calc-Test") for path in row[-3:]]
  write_files_of(tmp_path, row)
  write_csv(tmp_path / CALC_TEST_CSV, calc_header, [row])
  records, skipped = read_cbis_ddsm(tmp_path,
                                    splits=("test",),
                                    abnormality_types=("calcification",))
  assert skipped == []
  (record,) = records
  assert record["id"] == "Calc-Test_P_00001_LEFT_CC_1"
  assert (record["label"], record["split"]) == (0, "test")
  assert record["abnormality_type"] == "calcification"


def test_missing_image_is_skipped_with_its_reason(tmp_path):
  present, absent = mass_row(abnormality_id=1), mass_row(patient="P_00002")
  write_files_of(tmp_path, present)
  write_png(tmp_path / absent[-1])  # mask present, full image absent
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [present, absent])
  records, skipped = read_mass_train(tmp_path)
  assert [record["patient_id"] for record in records] == ["P_00001"]
  (skip,) = skipped
  assert skip["file"] == str(tmp_path / MASS_TRAIN_CSV)
  assert skip["row"] == 3  # header is line 1
  assert skip["id"] == "Mass-Training_P_00002_LEFT_CC_1"
  assert "image file path" in skip["reason"] and "not found" in skip["reason"]


def test_missing_crop_gives_none(tmp_path):
  row = mass_row()
  write_png(tmp_path / row[-3])
  write_png(tmp_path / row[-1])
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [row])
  records, skipped = read_mass_train(tmp_path)
  assert skipped == [] and records[0]["crop_path"] is None


@pytest.mark.parametrize("escaping", ["../outside.png", "{outside}", "a/../../outside.png"])
def test_paths_escaping_the_root_are_skipped(tmp_path, escaping):
  root = tmp_path / "dataset"
  outside = tmp_path / "outside.png"
  write_png(outside)
  row = mass_row(image=escaping.format(outside=outside))
  write_files_of(root, mass_row())
  write_csv(root / MASS_TRAIN_CSV, HEADER, [row])
  records, skipped = read_mass_train(root)
  assert records == []
  assert len(skipped) == 1 and "escapes the dataset root" in skipped[0]["reason"]


def test_missing_column_names_the_column_and_the_file(tmp_path):
  header = [name for name in HEADER if name != "pathology"]
  write_csv(tmp_path / MASS_TRAIN_CSV, header, [])
  with pytest.raises(ValueError, match="pathology") as error:
    read_mass_train(tmp_path)
  assert MASS_TRAIN_CSV in str(error.value) and "columns found" in str(error.value)


def test_unknown_pathology_names_file_row_and_allowed_values(tmp_path):
  rows = [mass_row(), mass_row(patient="P_00002", pathology="PROBABLY_FINE")]
  for row in rows:
    write_files_of(tmp_path, row)
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, rows)
  with pytest.raises(ValueError, match="PROBABLY_FINE") as error:
    read_mass_train(tmp_path)
  message = str(error.value)
  assert MASS_TRAIN_CSV in message and "row 3" in message and "BENIGN_WITHOUT_CALLBACK" in message


def test_missing_csv_names_the_file_and_the_layout(tmp_path):
  with pytest.raises(FileNotFoundError, match=MASS_TRAIN_CSV) as error:
    read_mass_train(tmp_path)
  assert "layout" in str(error.value)


def test_duplicate_ids_are_rejected(tmp_path):
  row = mass_row()
  write_files_of(tmp_path, row)
  write_csv(tmp_path / MASS_TRAIN_CSV, HEADER, [row, row])
  with pytest.raises(ValueError, match="Mass-Training_P_00001_LEFT_CC_1"):
    read_mass_train(tmp_path)
