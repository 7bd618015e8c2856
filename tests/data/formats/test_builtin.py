"""builtin: distill's own datasets through the same registry."""

from __future__ import annotations

import bz2

import pytest

from distill.data import check_data, load_data, load_dataset
from distill.data.formats import DataError, MissingDataError


def test_digits_through_the_registry_matches_load_dataset():
    report = check_data("builtin", name="digits")
    assert report.input_shape == (1, 8, 8) and report.num_classes == 10
    data = load_data("builtin", name="digits")
    direct = load_dataset("digits", "test")
    assert len(data.test) == len(direct) == report.counts["test"]
    assert data.class_names == tuple(str(i) for i in range(10))


def test_rotten_tomatoes_with_its_own_file(tmp_path, tokenizer):
    rows = ["category,text"]
    rows += [f'fresh,"a good film {i}"' for i in range(30)]
    rows += [f'rotten,"a bad film {i}"' for i in range(30)]
    path = tmp_path / "rt.csv.bz2"
    with bz2.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    report = check_data("builtin", name="rotten-tomatoes", root=path)
    assert report.class_names == ("rotten", "fresh") and sum(report.counts.values()) == 60
    data = load_data("builtin", name="rotten-tomatoes", root=path, tokenizer=tokenizer,
                     max_length=5)
    assert data.train.encodings["input_ids"].shape[1] == 5
    assert data.train.info.class_names == ("rotten", "fresh")


def test_unknown_name_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="did you mean 'digits'"):
        check_data("builtin", name="digit")
    with pytest.raises(MissingDataError, match="lacks"):
        check_data("builtin", name="fashion-mnist", root=tmp_path)
    with pytest.raises(DataError, match="takes no root"):
        check_data("builtin", name="digits", root=tmp_path)
