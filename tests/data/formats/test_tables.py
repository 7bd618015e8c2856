"""table: CSV / TSV / JSONL / JSON / Parquet, text or numeric columns, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from distill.data import NO_LABEL, ArrayDataset, check_data, load_data
from distill.data.formats import DataError, MissingDataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def wine_csv(tmp_path):
    """sklearn's wine table as CSV, string labels "a"/"b"/"c" in its last column."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    names = [n.replace("/", "_") for n in bunch.feature_names]
    lines = [",".join([*names, "kind"])]
    lines += [",".join([*map(str, row), "abc"[label]])
              for row, label in zip(bunch.data, bunch.target, strict=True)]
    path = tmp_path / "wine.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, bunch


def test_tabular_csv_standardized_on_train_with_string_labels(wine_csv):
    path, bunch = wine_csv
    data = load_data("table", path=path, test_fraction=0.25, label_column="kind",
                     feature_columns="all-numeric")
    assert isinstance(data.train, ArrayDataset)
    assert data.class_names == ("a", "b", "c")
    assert data.train.inputs.dtype == torch.float32 and data.train.labels.dtype == torch.int64
    assert data.train.info.input_shape == (13,) and data.train.info.class_names == ("a", "b", "c")
    assert len(data.train) + len(data.test) == 178
    counts = torch.bincount(data.test.labels).tolist()  # stratified: 25% of 59 / 71 / 48
    assert counts == [15, 18, 12]
    assert torch.allclose(data.train.inputs.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(data.train.inputs.std(0, unbiased=False), torch.ones(13), atol=1e-4)
    steps = data.preprocessing
    assert steps["kind"] == "tabular" and len(steps["feature_columns"]) == 13
    # the test rows come back with the stored mean/std, and these are the train rows' own
    mean, std = np.asarray(steps["mean"]), np.asarray(steps["std"])
    restored = data.test.inputs.double().numpy() * std + mean
    distance = np.abs(restored[:, None, :] - bunch.data[None]).max(axis=2)
    test_rows = distance.argmin(axis=1)
    assert distance.min(axis=1).max() < 1e-3 * bunch.data.max()
    train_rows = np.setdiff1d(np.arange(178), test_rows)
    assert np.allclose(mean, bunch.data[train_rows].mean(0))
    assert np.allclose(std, bunch.data[train_rows].std(0))
    again = load_data("table", path=path, test_fraction=0.25, label_column="kind",
                      feature_columns="all-numeric")
    assert torch.equal(again.test.inputs, data.test.inputs)


def test_chosen_columns_without_standardizing(wine_csv):
    path, bunch = wine_csv
    data = load_data("table", path=path, test=path, label_column="kind",
                     feature_columns=["alcohol", "proline"], standardize=False)
    assert data.train.inputs.shape == (178, 2)
    assert torch.allclose(data.train.inputs[:, 0], torch.tensor(bunch.data[:, 0]).float())
    assert data.preprocessing["mean"] is None
    report = check_data("table", path=path, test=path, label_column="kind",
                        feature_columns=["alcohol", "proline"])
    assert report.input_kind == "tabular" and report.input_shape == (2,)
    assert report.counts == {"train": 178, "test": 178}


def _write_texts(path, texts, labels, kind):
    rows = [{"text": t, "label": y} for t, y in zip(texts, labels, strict=True)]
    if kind == "csv":
        path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows))
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "json":
        path.write_text(json.dumps(rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json", "parquet"])
def test_text_tables_tokenized(tmp_path, tokenizer, make_reviews, kind):
    texts, labels = make_reviews(40)
    path = _write_texts(tmp_path / f"r.{kind}", texts, labels, kind)
    extra = _write_texts(tmp_path / f"u.{kind}", texts[:6], labels[:6], kind)
    data = load_data("table", tokenizer=tokenizer, path=path, test_fraction=0.25,
                     label_column="label", text_column="text", max_length=8, unlabeled=extra)
    assert data.class_names == ("neg", "pos")
    assert len(data.train) == 30 and len(data.test) == 10
    sample = data.train[0]
    assert sample["input_ids"].shape == (8,) and int(sample["labels"]) in (0, 1)
    assert data.train.info.class_names == ("neg", "pos")
    assert data.unlabeled.labels is None and len(data.unlabeled) == 6
    assert data.preprocessing == {"kind": "text", "text_column": "text", "max_length": 8}
    # "pos" texts are made of the first three words
    first = [int(t) for t in data.train.encodings["input_ids"][0]]
    assert (int(data.train.labels[0]) == 1) == bool(set(first) & {2, 3, 4})


def test_integer_labels_keep_their_values(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("f,y\n" + "".join(f"{i},{2 * (i % 2)}\n" for i in range(10)))
    data = load_data("table", path=path, test_fraction=0.2, label_column="y",
                     feature_columns=["f"])
    assert data.class_names == ("0", "1", "2")
    assert set(data.train.labels.tolist()) == {0, 2}
    assert data.train.info.num_classes == 3


def test_unlabeled_table_needs_no_label_column(tmp_path):
    train = tmp_path / "t.csv"
    train.write_text("f,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    extra = tmp_path / "u.csv"
    extra.write_text("f\n1\n2\n")
    data = load_data("table", path=train, test_fraction=0.2, label_column="y",
                     feature_columns=["f"], unlabeled=extra)
    assert data.unlabeled.labels.tolist() == [NO_LABEL, NO_LABEL]


def _bad(**options) -> str:
    with pytest.raises(DataError) as caught:
        check_data("table", **options)
    return str(caught.value)


def test_missing_and_misspelled_columns(wine_csv):
    path, _ = wine_csv
    message = _bad(path=path, test_fraction=0.2, label_column="knd",
                   feature_columns="all-numeric")
    assert "no label column 'knd'" in message and "did you mean 'kind'?" in message
    assert "'alcohol'" in message  # the columns are listed
    message = _bad(path=path, test_fraction=0.2, label_column="kind",
                   feature_columns=["alcohol", "prolin"])
    assert "no feature column 'prolin'" in message and "did you mean 'proline'?" in message
    assert "no text column 'txt'" in _bad(path=path, test_fraction=0.2, label_column="kind",
                                          text_column="txt")


def test_missing_label_names_its_row(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("f,y\n1,a\n2,b\n3,\n4,a\n")
    message = _bad(path=path, test_fraction=0.5, label_column="y", feature_columns=["f"])
    assert "label column 'y'" in message and "missing in row 3" in message


def test_non_numeric_feature_is_named(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("f,colour,y\n1,red,a\n2,blue,b\n3,red,a\n4,red,b\n")
    message = _bad(path=path, test_fraction=0.5, label_column="y",
                   feature_columns=["f", "colour"])
    assert "feature column 'colour' is not numeric" in message and "'red' in row 1" in message
    # all-numeric leaves it out instead
    report = check_data("table", path=path, test_fraction=0.5, label_column="y",
                        feature_columns="all-numeric")
    assert report.input_shape == (1,)


def test_missing_feature_value_is_named(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("f,y\n1,a\n,b\n3,a\n4,b\n")
    assert "feature column 'f' has no value in row 2" in _bad(
        path=path, test_fraction=0.5, label_column="y", feature_columns=["f"])


def test_empty_files(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert "is empty" in _bad(path=empty, test_fraction=0.5, label_column="y",
                              feature_columns=["f"])
    header = tmp_path / "h.csv"
    header.write_text("f,y\n")
    assert "has no rows" in _bad(path=header, test_fraction=0.5, label_column="y",
                                 feature_columns=["f"])


def test_test_labels_train_never_had(tmp_path):
    train, test = tmp_path / "a.csv", tmp_path / "b.csv"
    train.write_text("f,y\n1,cat\n2,dog\n")
    test.write_text("f,y\n1,cat\n2,bird\n")
    message = _bad(path=train, test=test, label_column="y", feature_columns=["f"])
    assert "label 'bird' in row 2 never occurs in the training data" in message
    assert str(test) in message


def test_paths_and_suffixes(tmp_path):
    with pytest.raises(MissingDataError, match="does not exist"):
        check_data("table", path=tmp_path / "no.csv", test_fraction=0.5, label_column="y",
                   feature_columns=["f"])
    odd = tmp_path / "x.xlsx"
    odd.write_text("")
    assert "unknown table type '.xlsx'" in _bad(path=odd, test_fraction=0.5, label_column="y",
                                                feature_columns=["f"])


def test_text_needs_a_tokenizer(tmp_path, make_reviews):
    texts, labels = make_reviews(8)
    path = _write_texts(tmp_path / "r.csv", texts, labels, "csv")
    with pytest.raises(DataError, match="tokenizer="):
        load_data("table", path=path, test_fraction=0.5, label_column="label",
                  text_column="text")
