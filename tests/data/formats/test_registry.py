"""The format registry, guess_format, shared option errors, and lazy optional imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from distill.data import DATA_FORMATS, check_data, guess_format, load_data
from distill.data.formats import DataError, DataFormat, MissingDataError, SourceOptions
from distill.registry import UnknownNameError


def test_every_format_is_registered_with_options():
    assert set(DATA_FORMATS.names()) == {"image-folder", "table", "hf-dataset", "numpy",
                                         "text-folder", "text-corpus", "builtin"}
    for name in DATA_FORMATS.names():
        data_format = DATA_FORMATS.get(name)
        assert issubclass(data_format, DataFormat) and data_format.name == name
        assert data_format.Options.model_config["extra"] == "forbid"


def test_unknown_format_suggests_one():
    with pytest.raises(UnknownNameError, match="did you mean 'table'"):
        load_data("tabel", path="x.csv")


@pytest.mark.parametrize("options, message", [
    ({"test": "t.npz", "test_fraction": 0.2}, "not both"),
    ({}, "test=<file or folder> or test_fraction"),
    ({"test_fraction": 1.5}, "test_fraction: Input should be less than 1"),
    ({"test_fraction": 0.2, "tset": "x"}, "unknown option 'tset'; did you mean 'test'"),
])
def test_test_source_and_option_errors(tmp_path, options, message):
    with pytest.raises(DataError, match=message):
        check_data("numpy", path=tmp_path / "d.npz", **options)


def test_source_options_is_the_shared_base():
    for name in ("image-folder", "table", "numpy", "text-folder", "hf-dataset"):
        assert issubclass(DATA_FORMATS.get(name).Options, SourceOptions)


def test_guess_format(tmp_path, make_images):
    for suffix, expected in ((".csv", "table"), (".tsv", "table"), (".jsonl", "table"),
                             (".json", "table"), (".parquet", "table"), (".npz", "numpy"),
                             (".npy", "numpy")):
        (tmp_path / f"f{suffix}").write_text("")
        assert guess_format(tmp_path / f"f{suffix}") == expected
    make_images(tmp_path / "imgs", {"a": 1})
    assert guess_format(tmp_path / "imgs") == "image-folder"
    (tmp_path / "texts" / "a").mkdir(parents=True)
    (tmp_path / "texts" / "a" / "1.txt").write_text("hi")
    assert guess_format(tmp_path / "texts") == "text-folder"
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "dataset_dict.json").write_text("{}")
    assert guess_format(tmp_path / "hf") == "hf-dataset"
    assert guess_format("fashion-mnist") == "builtin"
    with pytest.raises(MissingDataError):
        guess_format(tmp_path / "nowhere")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(DataError, match="cannot tell the format"):
        guess_format(tmp_path / "x.xlsx")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="cannot tell the format of folder"):
        guess_format(tmp_path / "nothing")


def test_check_summary_reads_well(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 3)), y=np.arange(8) % 2)
    report = check_data("numpy", path=tmp_path / "d.npz", test_fraction=0.25)
    assert report.summary() == "numpy: tabular inputs (3), 2 classes, 6 train, 2 test"


def test_importing_distill_loads_no_optional_data_dependency():
    code = ("import sys, distill, distill.data; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'datasets'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
