"""Preprocessing stored with a model and applied to new inputs: read_preprocessing, distill
predict, distill eval --data FOLDER, ONNX exports (issue 19 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import distill
from distill.artifacts import ArtifactError, read_metadata, read_preprocessing
from distill.cli import main
from distill.data import load_dataset
from distill.data.formats.images import preprocess_image

PIL = pytest.importorskip("PIL.Image")
GREY = {"kind": "image", "size": [8, 8], "channels": "L", "mean": [0.5], "std": [0.25]}
NAMES = ["ant", "bee", "cat"]


def _cnn():
    torch.manual_seed(0)
    return distill.build_cnn((1, 8, 8), 3, channels=(4,)).eval()


@pytest.fixture
def saved(tmp_path) -> Path:
    folder = tmp_path / "cnn"
    distill.save(_cnn(), folder, metadata={"preprocessing": GREY, "class_names": NAMES})
    return folder


def _images(folder: Path) -> list[Path]:
    """Grey and colour PNGs, none of them 8x8: predict must convert and resize them."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (shape, mode) in enumerate([((12, 10), "L"), ((5, 7), "L"), ((9, 9, 3), "RGB"),
                                       ((16, 16), "L")]):
        path = folder / f"img{i}.png"
        PIL.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
        paths.append(path)
    return paths


def test_read_preprocessing_and_load_give_the_record(saved, tmp_path):
    assert read_preprocessing(saved) == GREY
    assert read_metadata(saved)["class_names"] == NAMES
    assert distill.load(saved).distill_preprocessing == GREY
    distill.save(_cnn(), tmp_path / "bare")
    assert read_preprocessing(tmp_path / "bare") is None
    assert distill.load(tmp_path / "bare").distill_preprocessing is None


@pytest.mark.parametrize("record,message", [
    ("pixels", "must be a JSON object"),
    ({"kind": "audio"}, "'kind' is 'audio'"),
    ({**GREY, "size": [8]}, "'size' must be"),
    ({**GREY, "channels": "CMYK"}, "'channels'"),
    ({**GREY, "mean": [0.5, 0.5, 0.5]}, "1 number"),
    ({**GREY, "std": [0.0]}, "'std' must be positive"),
])
def test_a_bad_record_is_refused_naming_the_file(tmp_path, record, message):
    with pytest.raises(ArtifactError, match=message):  # at save, before anything is written
        distill.save(_cnn(), tmp_path / "m", metadata={"preprocessing": record})
    assert not (tmp_path / "m").exists()
    distill.save(_cnn(), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["metadata"] = {"preprocessing": record}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    for read in (read_preprocessing, distill.load):
        with pytest.raises(ArtifactError, match=message) as info:
            read(tmp_path / "m")
        assert "config.json" in str(info.value)


def test_a_hugging_face_folder_keeps_its_record_in_distill_json(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (folder / "distill.json").write_text(json.dumps({"preprocessing": {"kind": "text",
                                                                       "max_length": 64}}))
    assert read_preprocessing(folder) == {"kind": "text", "max_length": 64}
    (folder / "distill.json").write_text(json.dumps({"preprocessing": {"kind": 3}}))
    with pytest.raises(ArtifactError, match="distill.json"):
        read_preprocessing(folder)


def test_predict_prints_what_the_model_gives_in_python(saved, tmp_path, capsys):
    paths = _images(tmp_path / "new")
    assert main(["predict", str(saved), *map(str, paths)]) == 0
    lines = capsys.readouterr().out.splitlines()
    model = distill.load(saved)
    for path, line in zip(paths, lines, strict=True):
        with PIL.open(path) as image:
            pixels = preprocess_image(image, GREY)
        assert pixels.shape == (1, 8, 8)
        with torch.no_grad():
            probabilities = F.softmax(model(pixels[None]), dim=-1)[0]
        best = int(probabilities.argmax())
        assert line == f"{path}: {NAMES[best]} ({100 * float(probabilities[best]):.2f}%)"


def test_predict_without_a_record_says_what_to_pass(tmp_path, capsys):
    distill.save(_cnn(), tmp_path / "bare")
    paths = _images(tmp_path / "new")[:1]
    assert main(["predict", str(tmp_path / "bare"), str(paths[0])]) == 1
    err = capsys.readouterr().err
    for flag in ("--size", "--mean", "--std", "--channels"):
        assert flag in err
    given = ["--size", "8", "8", "--channels", "L", "--mean", "0.5", "--std", "0.25"]
    assert main(["predict", str(tmp_path / "bare"), str(paths[0]), *given]) == 0
    assert capsys.readouterr().out.startswith(f"{paths[0]}: ")  # an index: no names stored


def test_predict_options_that_contradict_the_record_warn(saved, tmp_path, capsys):
    path = _images(tmp_path / "new")[0]
    assert main(["predict", str(saved), str(path), "--mean", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "WARNING:" in err and "mean [0.5]" in err and "mean [0.1] (your --option)" in err


def _digits_model_and_folder(tmp_path: Path, size: int) -> tuple[Path, Path, float]:
    """An MLP trained on digits (pixels in [0, 1]) saved with that record, and the digits
    test split written as ``size``x``size`` PNGs in class folders."""
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    torch.manual_seed(0)
    model = distill.build_mlp((1, 8, 8), 10, hidden=(64,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        optimizer.zero_grad()
        F.cross_entropy(model(train.inputs), train.labels).backward()
        optimizer.step()
    record = {"kind": "image", "size": [8, 8], "channels": "L", "mean": [0.0], "std": [1.0]}
    distill.save(model.eval(), tmp_path / "model", metadata={"preprocessing": record})
    for i, (pixels, label) in enumerate(zip(test.inputs, test.labels, strict=True)):
        grey = (pixels[0].numpy() * 255).round().astype(np.uint8)
        image = PIL.fromarray(grey, "L").resize((size, size), PIL.Resampling.NEAREST)
        (tmp_path / "images" / str(int(label))).mkdir(parents=True, exist_ok=True)
        image.save(tmp_path / "images" / str(int(label)) / f"{i}.png")
    with torch.no_grad():
        in_memory = float((model(test.inputs).argmax(-1) == test.labels).float().mean())
    return tmp_path / "model", tmp_path / "images", in_memory


def test_eval_of_an_image_folder_applies_the_stored_size(tmp_path, capsys):
    model, images, in_memory = _digits_model_and_folder(tmp_path, size=16)
    args = ["eval", str(model), "--data", str(images), "--repeats", "3", "--json"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    accuracy = json.loads(out)["student"]["accuracy"]
    assert "WARNING" not in err
    assert accuracy > 0.8 and accuracy > in_memory - 0.15  # 16x16 files, read at 8x8
    # the same folder read in Python with the recorded options gives the same number
    from distill.data.formats import DATA_FORMATS
    from distill.evaluate import accuracy as accuracy_of
    from distill.evaluate import predict

    fmt = DATA_FORMATS.get("image-folder")
    record = {k: v for k, v in read_preprocessing(model).items() if k != "kind"}
    data = fmt.load(fmt.options(path=images, test=images, **record)).test
    prediction = predict(distill.load(model), data)
    assert accuracy == pytest.approx(accuracy_of(prediction.logits, prediction.labels))
    # options that contradict the record are said, both values named, before anything fails
    assert main([*args, "--option", "mean=[0.5]", "--option", "std=[0.5]"]) == 0
    out, err = capsys.readouterr()
    assert "WARNING:" in err and "prepared with mean [0], std [1], but" in err
    assert "mean [0.5] (your --option), std [0.5] (your --option)" in err
    assert json.loads(out)["warnings"] == [err.strip().removeprefix("WARNING: ")]
    assert main([*args, "--option", "size=[16, 16]"]) == 1  # the MLP takes 8x8 only
    err = capsys.readouterr().err
    assert "size [8, 8]" in err and "size [16, 16] (your --option)" in err


def test_an_onnx_export_carries_the_record(saved, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from distill.quantize import to_onnx

    model = distill.load(saved)
    folder = to_onnx(model, torch.zeros(2, 1, 8, 8), tmp_path / "onnx",
                     preprocessing=read_preprocessing(saved), class_names=NAMES)
    assert json.loads((folder / "config.json").read_text())["preprocessing"] == GREY
    assert read_preprocessing(folder) == GREY
    assert distill.load(folder).distill_preprocessing == GREY
    paths = _images(tmp_path / "new")
    assert main(["predict", str(saved), *map(str, paths)]) == 0
    from_torch = capsys.readouterr().out.splitlines()
    assert main(["predict", str(folder), *map(str, paths)]) == 0
    from_onnx = capsys.readouterr().out.splitlines()
    assert [line.rsplit(" (", 1)[0] for line in from_onnx] == [
        line.rsplit(" (", 1)[0] for line in from_torch]  # same classes, by name
    with pytest.raises(ArtifactError, match="'kind'"):
        to_onnx(model, torch.zeros(2, 1, 8, 8), tmp_path / "bad", preprocessing={"size": 8})
    assert not (tmp_path / "bad").exists()
