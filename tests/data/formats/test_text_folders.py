"""text-folder: root/<class>/*.txt, UTF-8, tokenized by the student's tokenizer."""

from __future__ import annotations

import pytest

from distill.data import check_data, guess_format, load_data
from distill.data.formats import DataError


@pytest.fixture
def corpus(tmp_path, make_reviews):
    texts, labels = make_reviews(12)
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        folder = tmp_path / "news" / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    return tmp_path / "news"


def test_text_folder_loads_tokenized_splits(corpus, tokenizer):
    assert guess_format(corpus) == "text-folder"
    report = check_data("text-folder", path=corpus, test_fraction=0.5)
    assert report.input_kind == "text" and report.input_shape is None
    assert report.class_names == ("neg", "pos") and report.counts == {"train": 6, "test": 6}
    data = load_data("text-folder", tokenizer=tokenizer, path=corpus, test_fraction=0.5,
                     max_length=7, unlabeled=corpus)
    assert data.train.encodings["input_ids"].shape == (6, 7)
    assert sorted(data.test.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert data.unlabeled.labels is None and len(data.unlabeled) == 12
    assert data.train.info.class_names == ("neg", "pos")


def test_undecodable_file_is_named(corpus):
    bad = corpus / "pos" / "000.txt"
    bad.write_bytes(b"caf\xe9 au lait")
    with pytest.raises(DataError, match=r"000\.txt is not utf-8 text: byte 3"):
        check_data("text-folder", path=corpus, test_fraction=0.5)
    report = check_data("text-folder", path=corpus, test_fraction=0.5, encoding="latin-1")
    assert report.counts["train"] == 6


def test_class_folder_without_texts(corpus):
    (corpus / "empty").mkdir()
    with pytest.raises(DataError, match=r"class folder .*empty holds no text files"):
        check_data("text-folder", path=corpus, test_fraction=0.5)


def test_needs_tokenizer_and_known_encoding(corpus):
    with pytest.raises(DataError, match="tokenizer="):
        load_data("text-folder", path=corpus, test_fraction=0.5)
    with pytest.raises(DataError, match="unknown text encoding 'utf-99'"):
        check_data("text-folder", path=corpus, test_fraction=0.5, encoding="utf-99")
