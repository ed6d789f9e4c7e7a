"""Lesson 8's own code (its ``definition`` cells) on the real NIH sample, against xraykit.

The notebook turns NIH's ``finding_labels`` text into 0/1 columns, splits by patient and computes
per-finding AUCs with scikit-learn; these tests check the columns against the sample's own
``pneumonia`` column, that no patient lands in two splits, and that the AUCs are
``xraykit.evaluation.multilabel_auc``'s (None exactly where xraykit leaves a finding out).
"""

import numpy as np
import pandas as pd
import pytest

from tests.lesson_code import lesson_definitions
from xraykit import evaluation


@pytest.fixture(scope="module")
def lesson():
    return lesson_definitions("08")


@pytest.fixture(scope="module")
def table(lesson, nih_dir):
    return lesson.findings_table(pd.read_csv(nih_dir / "labels.csv"), lesson.FINDINGS)


def test_findings_table_matches_the_samples_labels(lesson, table, nih_dir):
    labels = pd.read_csv(nih_dir / "labels.csv")
    assert len(lesson.FINDINGS) == 14 and set(table[lesson.FINDINGS].values.ravel()) <= {0, 1}
    np.testing.assert_array_equal(table["Pneumonia"], labels["pneumonia"])
    normal = labels["finding_labels"] == "No Finding"
    assert normal.sum() > 0 and table.loc[normal, lesson.FINDINGS].values.sum() == 0
    several = labels["finding_labels"].str.contains("|", regex=False)
    assert (table.loc[several, lesson.FINDINGS].sum(axis=1) >= 2).all()
    assert "finding_labels" not in table and "patient_id" in table


def test_split_by_patient_keeps_each_patient_in_one_split(lesson):
    patients = np.repeat(np.arange(50), np.arange(50) % 4 + 1)  # 1 to 4 images per patient
    split = lesson.split_by_patient(patients, seed=3)
    frame = pd.DataFrame({"patient": patients, "split": split})
    assert frame.groupby("patient")["split"].nunique().max() == 1
    per_split = frame.groupby("split")["patient"].nunique()
    assert dict(per_split) == {"train": 30, "val": 10, "test": 10}  # 60/20/20 of the patients
    np.testing.assert_array_equal(split, lesson.split_by_patient(patients, seed=3))
    assert (split != lesson.split_by_patient(patients, seed=4)).any()


def test_per_finding_auc_is_multilabel_auc(lesson, table):
    y = table[lesson.FINDINGS].to_numpy(dtype=float)
    rng = np.random.default_rng(0)
    scores = np.clip(0.3 * y + rng.random(y.shape), 0, 1)
    ours = lesson.per_finding_auc(y, scores, lesson.FINDINGS)
    theirs = evaluation.multilabel_auc(y, scores, lesson.FINDINGS)
    defined = {name for name, value in ours.items() if value is not None}
    assert defined == set(theirs) - {"mean"} and "Pneumonia" in defined and "Hernia" not in defined
    for name in defined:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-12)
    assert np.mean([ours[n] for n in defined]) == pytest.approx(theirs["mean"])
    y_blank = y.copy()
    y_blank[:10, 6] = np.nan  # unknown labels are left out, as the masked loss leaves them out
    assert lesson.per_finding_auc(y_blank, scores, lesson.FINDINGS)["Pneumonia"] == pytest.approx(
        evaluation.multilabel_auc(y_blank, scores, lesson.FINDINGS)["Pneumonia"])
