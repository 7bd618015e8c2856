from __future__ import annotations

import bz2

import pytest

from distill.data.rotten_tomatoes import load_rotten_tomatoes


@pytest.fixture
def corpus(tmp_path):
    rows = ["category,text,movie_name,has_plot_and_reviews"]
    rows += [f'fresh,"A fine film number {i}.",m,True' for i in range(60)]
    rows += [f'rotten,"A dull film number {i}.",m,True' for i in range(60)]
    rows += ['plot,"A plot summary, not a review.",m,True', 'fresh,"A fine film number 0.",m,True']
    path = tmp_path / "rt.csv.bz2"
    with bz2.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return path


def test_splits_are_disjoint_deduplicated_and_labelled(corpus):
    train, train_y = load_rotten_tomatoes("train", path=corpus)
    test, test_y = load_rotten_tomatoes("test", path=corpus)
    assert len(train) + len(test) == 120  # the plot row and the duplicate are gone
    assert not set(train) & set(test)
    assert 5 <= len(test) <= 35
    for texts, labels in ((train, train_y), (test, test_y)):
        assert all(y == (1 if "fine" in t else 0) for t, y in zip(texts, labels, strict=True))
    assert load_rotten_tomatoes("test", path=corpus) == (test, test_y)  # fixed split


def test_bad_arguments_are_named(corpus, tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_rotten_tomatoes("validation", path=corpus)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_rotten_tomatoes(path=tmp_path / "nope.csv.bz2")
