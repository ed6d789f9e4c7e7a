"""``python -m xraykit predict``: shared DICOMs and the NIH folder, thresholds, bad inputs.

A tiny multi-label model is saved with one threshold per finding; the command runs in a fresh
process on the shared radiographs, and its bad inputs end in one line on stderr, never a
traceback.
"""

import json
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from xraykit import cli
from xraykit.inference import save_model
from xraykit.models import build_model

FINDINGS = ["pneumonia", "atelectasis", "effusion"]
THRESHOLDS = [0.3, 0.5, 0.7]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = build_model("small_cnn", (64, 64, 1), task="multilabel", num_classes=3, width=4,
                        depth=2, seed=0)
    folder = tmp_path_factory.mktemp("predict")
    return save_model(model, folder / "findings.keras", threshold=THRESHOLDS,
                      class_names=FINDINGS, task="multilabel")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "xraykit", "predict", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_predict_dicoms_prints_rows_and_no_identifier(saved, dicom_dir):
    done = _run(saved, dicom_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "image," + ",".join(f"p_{f}" for f in FINDINGS) + "," + ",".join(FINDINGS)
    assert len(lines) == 1 + len(list(dicom_dir.glob("*.dcm")))
    for path in dicom_dir.glob("*.dcm"):
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        for tag in ("PatientID", "PatientName", "StudyDate", "InstitutionName"):
            value = str(header.get(tag, "") or "")
            if len(value) > 2:
                assert value not in done.stdout + done.stderr, tag


def test_predict_nih_folder_writes_json_decisions_at_saved_thresholds_and_maps(saved, nih_dir,
                                                                               tmp_path):
    done = _run(saved, nih_dir, "--out", tmp_path / "rows.json", "--gradcam", tmp_path / "maps")
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert len(rows) == len(list((nih_dir / "images").glob("*.png")))
    p = np.array([[row[f"p_{f}"] for f in FINDINGS] for row in rows])
    decided = np.array([[row[f] for f in FINDINGS] for row in rows])
    np.testing.assert_array_equal(decided, (p >= np.array(THRESHOLDS)).astype(int))
    assert len(list((tmp_path / "maps").glob("*.png"))) == len(rows) * len(FINDINGS)
    assert not list((tmp_path).glob(".*part*"))  # no temporary file left


@pytest.mark.parametrize("case", ["missing model", "missing path", "empty folder", "not an image"])
def test_bad_inputs_give_one_line_and_status_1(case, saved, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.png").write_text("not a picture")
    model, paths, extra = saved, [tmp_path / "notes.png"], []
    if case == "missing model":
        model, expected = tmp_path / "nope.keras", "no such model file"
    elif case == "missing path":
        paths, expected = [tmp_path / "nowhere"], "no such file or folder"
    elif case == "empty folder":
        paths, expected = [tmp_path / "empty"], "no image file in this folder"
    else:
        expected = "not a readable image"
    status = cli.main(["predict", str(model), *map(str, paths), *extra])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_out_must_be_csv_or_json(saved, dicom_dir, tmp_path, capsys):
    status = cli.main(["predict", str(saved), str(dicom_dir), "--out", str(tmp_path / "r.txt")])
    assert status == 1 and "--out must end in .csv or .json" in capsys.readouterr().err
    assert not (tmp_path / "r.txt").exists()


def test_thresholds_per_finding_are_checked_when_saved(saved, tmp_path):
    from xraykit.inference import load_model, model_config

    model = load_model(saved)
    assert model_config(model).threshold == THRESHOLDS
    with pytest.raises(ValueError, match="'threshold' has 2 values but the model has 3 output"):
        save_model(model, tmp_path / "m.keras", threshold=[0.1, 0.2], class_names=FINDINGS)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\], one per output"):
        save_model(model, tmp_path / "m.keras", threshold=[0.1, 2.0, 0.3], class_names=FINDINGS)
    assert not (tmp_path / "m.keras").exists()
