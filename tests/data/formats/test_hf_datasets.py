"""hf-dataset: save_to_disk folders, local files through datasets, and a hub name offline."""

from __future__ import annotations

import time

import pytest

from distill.data import check_data, guess_format, load_data
from distill.data.formats import DataError

datasets = pytest.importorskip("datasets")


def _features(with_class_label: bool):
    label = (datasets.ClassLabel(names=["neg", "pos"]) if with_class_label
             else datasets.Value("string"))
    return datasets.Features({"text": datasets.Value("string"), "label": label,
                              "score": datasets.Value("float32")})


def _dataset(texts, labels, with_class_label=True):
    values = [["neg", "pos"].index(y) for y in labels] if with_class_label else labels
    return datasets.Dataset.from_dict(
        {"text": texts, "label": values, "score": [float(len(t)) for t in texts]},
        features=_features(with_class_label))


def test_saved_dataset_dict_gives_splits_and_class_label_names(tmp_path, tokenizer,
                                                               make_reviews):
    train_texts, train_labels = make_reviews(24)
    test_texts, test_labels = make_reviews(8, seed=1)
    folder = tmp_path / "saved"
    datasets.DatasetDict(train=_dataset(train_texts, train_labels),
                         test=_dataset(test_texts, test_labels)).save_to_disk(str(folder))
    assert guess_format(folder) == "hf-dataset"
    report = check_data("hf-dataset", path=folder, text_column="text")
    assert report.class_names == ("neg", "pos") and report.counts == {"train": 24, "test": 8}
    data = load_data("hf-dataset", tokenizer=tokenizer, path=folder, text_column="text",
                     max_length=6)
    assert data.class_names == ("neg", "pos")
    assert data.test.labels.tolist() == [1 if y == "pos" else 0 for y in test_labels]
    assert data.train[0]["input_ids"].shape == (6,)


def test_saved_dataset_split_by_fraction_with_numeric_features(tmp_path, make_reviews):
    texts, labels = make_reviews(20)
    folder = tmp_path / "one"
    _dataset(texts, labels, with_class_label=False).save_to_disk(str(folder))
    data = load_data("hf-dataset", path=folder, test_fraction=0.2, feature_columns=["score"])
    assert data.class_names == ("neg", "pos")  # string labels, sorted
    assert data.train.inputs.shape == (16, 1) and len(data.test) == 4
    assert sorted(data.test.labels.tolist()) == [0, 0, 1, 1]
    with pytest.raises(DataError, match="without a test split"):
        check_data("hf-dataset", path=folder, feature_columns=["score"])


def test_local_csv_through_datasets(tmp_path, make_reviews):
    texts, labels = make_reviews(10)
    path = tmp_path / "r.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels,
                                                                          strict=True)))
    report = check_data("hf-dataset", path=path, test=path, text_column="text")
    assert report.input_kind == "text" and report.counts == {"train": 10, "test": 10}


def test_misspelled_column_and_split(tmp_path, make_reviews):
    texts, labels = make_reviews(6)
    folder = tmp_path / "dd"
    datasets.DatasetDict(train=_dataset(texts, labels)).save_to_disk(str(folder))
    with pytest.raises(DataError, match="no text column 'txt'; did you mean 'text'"):
        check_data("hf-dataset", path=folder, test_fraction=0.5, text_column="txt")
    with pytest.raises(DataError, match="no split 'tarin'; did you mean 'train'"):
        check_data("hf-dataset", path=folder, test_fraction=0.5, text_column="text",
                   train_split="tarin")


def test_hub_name_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataError, match="HF_HUB_OFFLINE is set"):
        check_data("hf-dataset", path="someone/some-dataset", text_column="text")
    assert time.monotonic() - start < 2


def test_unreachable_hub_fails_fast(monkeypatch):
    """With the hub not answering (a closed local port), the error comes at once, no retries."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(DataError, match="cannot be reached"):
        check_data("hf-dataset", path="imdb", text_column="text")
    assert time.monotonic() - start < 10


def test_folder_that_is_no_saved_dataset(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not a folder written by save_to_disk"):
        check_data("hf-dataset", path=tmp_path / "plain", test_fraction=0.5, text_column="t")
