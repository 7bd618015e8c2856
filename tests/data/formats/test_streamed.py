"""Tables read chunk by chunk into memory-mapped arrays give the datasets the in-memory path
gives, keep only labels and mapped pages in memory, and reuse what they wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from distill.data.formats import DATA_FORMATS
from distill.data.formats.base import DataError

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


@pytest.fixture
def small_chunks(monkeypatch):
    """Many chunks from a small file: rows cross chunk boundaries as a large file's would."""
    from distill.data.formats import streamed

    monkeypatch.setattr(streamed, "CHUNK_ROWS", 17)
    real = streamed.chunks

    def tiny(path, columns, text_columns):
        for batch in real(path, columns, text_columns):
            for start in range(0, batch.num_rows, 17):
                yield batch.slice(start, 17)

    monkeypatch.setattr(streamed, "chunks", tiny)


def _wine(tmp_path, kind="csv"):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    path = tmp_path / f"wine.{kind}"
    frame.to_csv(path, index=False) if kind == "csv" else frame.to_parquet(path)
    return path


def _load(path, **options):
    table = DATA_FORMATS.get("table")
    return table.load(table.Options(path=path, label_column="target", **options))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_streamed_features_equal_the_in_memory_ones(tmp_path, small_chunks, kind):
    path = _wine(tmp_path, kind)
    common = dict(feature_columns="all-numeric", test_fraction=0.3)
    whole, streamed = _load(path, stream=False, **common), _load(path, stream=True, **common)
    assert streamed.class_names == whole.class_names
    for split in ("train", "test"):
        a, b = getattr(whole, split), getattr(streamed, split)
        assert torch.equal(a.labels, b.labels)
        torch.testing.assert_close(b.inputs, a.inputs, rtol=1e-6, atol=1e-6)
    for key in ("mean", "std"):
        np.testing.assert_allclose(streamed.preprocessing[key], whole.preprocessing[key],
                                   rtol=1e-9)
    assert _mapped_file(streamed.train.inputs).endswith("train-features.npy")
    assert _mapped_file(whole.train.inputs) is None  # in memory


def _mapped_file(tensor: torch.Tensor) -> str | None:
    """The file whose mapping holds the tensor's data (Linux: /proc/self/maps), if any."""
    address = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        start, end = (int(v, 16) for v in parts[0].split("-"))
        if start <= address < end:
            return parts[5] if len(parts) == 6 and parts[5].startswith("/") else None
    return None


def test_streamed_text_equals_the_in_memory_tokens(tmp_path, small_chunks):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["good", "bad", "film", "the", "very"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[PAD]", "[UNK]", *words])},
                                      unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]",
                                                     unk_token="[UNK]")
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(90)]
    labels = ["pos" if "good" in t else "neg" for t in texts]
    pd.DataFrame({"text": texts, "target": labels}).to_csv(tmp_path / "t.csv", index=False)
    table = DATA_FORMATS.get("table")
    options = dict(path=tmp_path / "t.csv", label_column="target", text_column="text",
                   max_length=6, test_fraction=0.2)
    whole = table.load(table.Options(stream=False, **options), tokenizer=tokenizer)
    streamed = table.load(table.Options(stream=True, **options), tokenizer=tokenizer)
    for split in ("train", "test"):
        a, b = getattr(whole, split), getattr(streamed, split)
        assert torch.equal(a.labels, b.labels)
        assert set(a.encodings) == set(b.encodings)
        for key in a.encodings:
            assert torch.equal(a.encodings[key].long(), b.encodings[key].long()), key
    assert streamed.preprocessing == whole.preprocessing


def test_a_second_load_reuses_the_arrays_and_a_changed_file_rebuilds_them(tmp_path,
                                                                           cache_dir):
    path = _wine(tmp_path)
    common = dict(feature_columns="all-numeric", test_fraction=0.3, stream=True)
    first = _load(path, **common).train.inputs.clone()  # a copy: the map is replaced below
    folders = list((cache_dir / "tables").iterdir())
    assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()
    stamp = (folders[0] / "train-features.npy").stat().st_mtime_ns
    again = _load(path, **common)
    assert (folders[0] / "train-features.npy").stat().st_mtime_ns == stamp  # reused
    assert torch.equal(first, again.train.inputs)
    del again
    broken = folders[0] / "broken.npy"
    broken.write_bytes(b"\x93NUMPY")  # a truncated array (a new file: the old map stays valid)
    broken.replace(folders[0] / "train-features.npy")
    assert torch.equal(_load(path, **common).train.inputs, first)  # rebuilt
    frame = pd.read_csv(path)
    frame.loc[0, "alcohol"] = 99.0
    frame.to_csv(path, index=False)
    changed = _load(path, **common)
    assert len(list((cache_dir / "tables").iterdir())) == 2
    assert not torch.equal(changed.train.inputs, first)


def test_bad_rows_are_named_with_their_row_across_chunks(tmp_path, small_chunks):
    path = _wine(tmp_path)
    frame = pd.read_csv(path)
    frame["alcohol"] = frame["alcohol"].astype(object)
    frame.loc[150, "alcohol"] = None
    frame.to_csv(path, index=False)
    table = DATA_FORMATS.get("table")
    options = table.Options(path=path, label_column="target", feature_columns=["alcohol"],
                            test_fraction=0.3, stream=True)
    with pytest.raises(DataError, match=r"feature column 'alcohol' has no value in row 151"):
        table.check(options)
    frame.loc[150, "alcohol"] = 1.0
    frame.loc[160, "target"] = None
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"label is missing in row 161"):
        table.load(options)


def test_a_json_array_cannot_be_streamed(tmp_path):
    (tmp_path / "rows.json").write_text('[{"target": "a", "x": 1}, {"target": "b", "x": 2}]')
    table = DATA_FORMATS.get("table")
    with pytest.raises(DataError, match="to stream it, write it as JSON Lines"):
        table.check(table.Options(path=tmp_path / "rows.json", label_column="target",
                                  feature_columns=["x"], test_fraction=0.5, stream=True))


def test_the_default_streams_only_what_would_not_fit(tmp_path, monkeypatch):
    from distill.data.formats import streamed

    path = _wine(tmp_path)
    table = DATA_FORMATS.get("table")
    options = table.Options(path=path, label_column="target", feature_columns="all-numeric",
                            test_fraction=0.3)
    assert not streamed.wants_stream(options)
    monkeypatch.setattr(streamed, "physical_memory", lambda: 4 * path.stat().st_size - 4)
    assert streamed.wants_stream(options)
    assert not streamed.wants_stream(options.model_copy(update={"stream": False}))


def test_a_manifest_naming_a_file_outside_the_folder_is_rebuilt_not_followed(tmp_path,
                                                                             cache_dir):
    import json

    path = _wine(tmp_path)
    common = dict(feature_columns="all-numeric", test_fraction=0.3, stream=True)
    first = _load(path, **common).train.inputs.clone()
    (folder,) = list((cache_dir / "tables").iterdir())
    np.save(tmp_path / "outside.npy", np.zeros((2, 2), np.float32))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["arrays"]["../../outside"] = {"shape": [2, 2], "dtype": "float32"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert torch.equal(_load(path, **common).train.inputs, first)  # rebuilt from the table
    assert "../../outside" not in json.loads((folder / "manifest.json").read_text())["arrays"]
