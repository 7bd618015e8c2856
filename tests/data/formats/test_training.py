"""Loaded data trains end to end: distill.distill on an image folder and on a CSV table."""

from __future__ import annotations

import math

import torch

import distill
from distill.data import load_data


def test_distill_on_an_image_folder(tmp_path, make_images):
    make_images(tmp_path / "imgs", {"a": 8, "b": 8}, size=(8, 8))
    data = load_data("image-folder", path=tmp_path / "imgs", test_fraction=0.25)
    shape, classes = data.train.info.input_shape, data.train.info.num_classes
    torch.manual_seed(0)
    teacher = distill.build_cnn(shape, classes, channels=(4,))
    student = distill.build_mlp(shape, classes, hidden=(8,))
    result = distill.distill(teacher, student, data.train, eval=data.test, epochs=1,
                             batch_size=8)
    assert math.isfinite(result.metrics["accuracy"]) and len(result.history) == 1
    assert result.student(data.test[0][0][None]).shape == (1, 2)


def test_distill_on_a_csv_table(tmp_path):
    from sklearn.datasets import load_wine

    bunch = load_wine()
    lines = [",".join([f"f{i}" for i in range(13)] + ["label"])]
    lines += [",".join([*map(str, row), str(label)])
              for row, label in zip(bunch.data, bunch.target, strict=True)]
    (tmp_path / "wine.csv").write_text("\n".join(lines))
    data = load_data("table", path=tmp_path / "wine.csv", test_fraction=0.2,
                     label_column="label", feature_columns="all-numeric")
    torch.manual_seed(0)
    teacher = distill.build_mlp((13,), 3, hidden=(32,))
    distill.train_model(teacher, data.train, epochs=5, batch_size=16, lr=1e-2)
    student = distill.build_mlp((13,), 3, hidden=(8,))
    result = distill.distill(teacher, student, data.train, eval=data.test, epochs=5,
                             batch_size=16, lr=1e-2)
    assert result.metrics["accuracy"] > 0.6  # standardized wine is easy; chance is ~0.4
