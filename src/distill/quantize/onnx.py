"""Deployment through ONNX Runtime: export, optional int8 quantization there, and a module that
runs the exported file so distill's evaluation tools measure it like any other model.

On x86 CPUs ONNX Runtime's int8 kernels beat PyTorch's (see BENCHMARKS.md), which makes this
the deployment path to beat. An exported folder holds ``model.onnx`` and ``config.json``;
``distill.load`` opens it as an :class:`OnnxModel`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from distill import atomic
from distill.batches import Inputs, first_batches, forward

FORMAT = "distill.onnx/1"
MODEL_FILE = "model.onnx"


def _require_onnx():
    try:
        import onnxruntime
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("ONNX export needs onnx and onnxruntime: pip install 'distill[onnx]'"
                          ) from err
    return onnxruntime


class _Logits(nn.Module):
    """The model with one output, its logits, and named inputs: what the exporter traces."""

    def __init__(self, model: nn.Module, names: list[str] | None):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *args: Tensor) -> Tensor:
        if self.names is None:
            return forward(self.model, args[0])
        return forward(self.model, dict(zip(self.names, args, strict=True)))


def to_onnx(
    model: nn.Module,
    example_inputs: Inputs,
    path: str | Path,
    *,
    int8: bool | str = False,
    calibration: Any = None,
    calibration_batches: int = 8,
    tolerance: float = 1e-4,
    preprocessing: dict[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Export ``model`` to the folder ``path`` (``model.onnx`` + ``config.json``), checked.

    The batch dimension (and the sequence dimension of token inputs) stays dynamic. The export
    is run on ``example_inputs`` and compared with PyTorch: fp32 must agree within
    ``tolerance`` (max absolute difference relative to the largest logit), or nothing is
    written. ``int8=True`` (or ``"dynamic"``) then quantizes the graph dynamically in ONNX
    Runtime (int8 weights per channel, activations per batch: transformers); ``"static"``
    calibrates activation ranges on ``calibration`` data and writes a QDQ graph (CNNs, whose
    convolutions the dynamic kind leaves slow). The int8 difference is recorded, not bounded.

    ``preprocessing`` (how inputs were prepared: ``LoadedData.preprocessing``, or the source
    folder's :func:`distill.artifacts.read_preprocessing`) and ``class_names`` are written to
    config.json, so the exported model predicts on new files as its source did.
    """
    mode = {True: "dynamic", False: None, None: None}.get(int8, int8)  # type: ignore[call-overload]
    if mode not in (None, "dynamic", "static"):
        raise ValueError(f"int8 must be False, True/'dynamic' or 'static', got {int8!r}")
    if mode == "static" and calibration is None:
        raise ValueError("int8='static' calibrates activations: pass calibration=<data>")
    extra = _records(preprocessing, class_names)
    ort = _require_onnx()
    path = Path(path)
    names = list(example_inputs) if isinstance(example_inputs, Mapping) else None
    args = tuple(example_inputs.values()) if names else (example_inputs,)
    wrapped = _Logits(model.eval(), names).eval()
    input_names = names or ["input"]
    dims = {0: torch.export.Dim("batch", min=1)}
    if names:  # token inputs: (batch, sequence)
        dims = {0: torch.export.Dim("batch", min=1), 1: torch.export.Dim("sequence", min=2)}
    dynamic = tuple(dims if a.dim() >= 2 or not names else {0: dims[0]} for a in args)
    with torch.no_grad():
        reference = wrapped(*args).float()
    with atomic.directory(path) as tmp:
        fp32 = tmp / ("fp32.onnx" if mode else MODEL_FILE)
        registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
        level = registry_log.level
        registry_log.setLevel(logging.ERROR)  # "torchvision is not installed": not needed here
        try:
            with warnings.catch_warnings():  # the exporter's notes on axis names, pytree APIs
                warnings.simplefilter("ignore", category=UserWarning)
                warnings.simplefilter("ignore", category=FutureWarning)
                torch.onnx.export(wrapped, args, str(fp32), input_names=input_names,
                                  output_names=["logits"], dynamic_shapes=(dynamic,),
                                  dynamo=True, external_data=False, optimize=True,
                                  verbose=False)
        finally:
            registry_log.setLevel(level)
        diff = _max_diff(ort, fp32, input_names, args, reference)
        if diff > tolerance:
            raise ValueError(f"the exported graph's logits differ from PyTorch's by {diff:.2e} "
                             f"(relative to the largest logit; tolerance {tolerance:.0e})")
        config: dict[str, Any] = {"format": FORMAT, "inputs": input_names, "int8": mode,
                                  "max_relative_diff_fp32": diff, **extra}
        if mode:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            # Shapes inferred and the graph optimised first, as ONNX Runtime recommends;
            # auto_merge lets a dynamic sequence axis meet fixed position tables (Min(32, seq)),
            # which transformers need.
            prepared = tmp / "prepared.onnx"
            quant_pre_process(str(fp32), str(prepared), auto_merge=True)
            _quantize(prepared, tmp / MODEL_FILE, mode, input_names, calibration,
                      calibration_batches, tokens=names is not None)
            fp32.unlink()
            prepared.unlink()
            config["max_relative_diff_int8"] = _max_diff(ort, tmp / MODEL_FILE, input_names,
                                                         args, reference)
        atomic.write_json(tmp / "config.json", config)
    return path


def _records(preprocessing: dict[str, Any] | None,
             class_names: Sequence[str] | None) -> dict[str, Any]:
    """The config.json entries for what the export carries beside its graph, checked first."""
    from distill.artifacts import check_preprocessing

    out: dict[str, Any] = {}
    if preprocessing is not None:
        out["preprocessing"] = check_preprocessing(preprocessing, "to_onnx(preprocessing=...)")
    if class_names is not None:
        if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
            raise ValueError(f"class_names must be a list of strings, got {class_names!r}")
        out["class_names"] = list(class_names)
    return out


def _quantize(source: Path, target: Path, mode: str, names: list[str], calibration: Any,
              batches: int, tokens: bool) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if mode == "dynamic":
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
        return

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = first_batches(calibration, batches, 64)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            if batch is None:
                return None
            inputs = batch.inputs if isinstance(batch.inputs, Mapping) else {names[0]:
                                                                            batch.inputs}
            return {n: inputs[n].numpy() for n in names}

    # reduce_range: 7-bit weights. x86 CPUs without VNNI multiply uint8 by int8 in 16-bit
    # pairs that saturate (ONNX Runtime's documented U8S8 caveat); at 8 bits the Fashion-MNIST
    # CNN lost 4.6 points, at 7 none (BENCHMARKS.md).
    # Token inputs (transformers): only the matrix products. LayerNorm, Softmax and GELU
    # outputs have outliers that min/max ranges quantize badly (the MiniLM student kept 88.5%
    # of its accuracy with every op quantized, 99.1% with products only).
    ops = ["MatMul", "Gemm"] if tokens else None
    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=ops)


def _max_diff(ort, file: Path, names: list[str], args: tuple, reference: Tensor) -> float:
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    feed = {n: a.detach().cpu().numpy() for n, a in zip(names, args, strict=True)}
    out = torch.from_numpy(session.run(None, feed)[0]).float()
    return float((out - reference).abs().max() / reference.abs().max().clamp(min=1e-12))


def _as_numpy(tensor: Tensor) -> np.ndarray:
    """A CPU tensor's memory as a C-ordered array: no copy when it already is one."""
    if tensor.requires_grad or tensor.device.type != "cpu":
        tensor = tensor.detach().cpu()
    array = tensor.numpy()
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


class OnnxModel(nn.Module):
    """An exported model run by ONNX Runtime behind the ``nn.Module`` interface.

    Its session uses as many threads as torch does when it is called (recreated when that
    changes), so latency measured with ``threads=1`` means one thread here too.
    """

    def __init__(self, folder: str | Path):
        super().__init__()
        self.folder = Path(folder)
        self.config = json.loads((self.folder / "config.json").read_text())
        if self.config.get("format") != FORMAT:
            raise ValueError(f"{self.folder}: not an exported ONNX model ({FORMAT})")
        from distill.artifacts import read_preprocessing

        # how inputs were prepared, as distill.load gives every model (None: not recorded)
        self.distill_preprocessing = read_preprocessing(self.folder)
        self._session: Any = None
        self._threads = 0

    def _get_session(self):
        threads = torch.get_num_threads()
        if self._session is None or threads != self._threads:
            ort = _require_onnx()
            options = ort.SessionOptions()
            # chosen, not defaulted: one pool of torch's size (a latency measured with
            # threads=1 is one thread here too), operators run one after another (a small
            # encoder has no independent branches worth a second pool), every graph rewrite
            # ONNX Runtime has for this CPU
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(str(self.folder / MODEL_FILE), options,
                                                 providers=["CPUExecutionProvider"])
            self._threads = threads
        return self._session

    def forward(self, inputs: Tensor | None = None, **named: Tensor) -> Tensor:
        names = self.config["inputs"]
        if not named and len(names) == 1:  # the common case, kept short: at batch 1 a small
            feed = {names[0]: _as_numpy(inputs)}  # model's whole call is ~0.1 ms
        else:
            values = named if named else {names[0]: inputs}
            missing = [n for n in names if n not in values]
            if missing:
                raise ValueError(f"the exported model needs inputs {names}; missing {missing}")
            feed = {n: _as_numpy(values[n]) for n in names}
        return torch.from_numpy(self._get_session().run(None, feed)[0])

    def parameter_count(self) -> int:
        """Weights in the graph (its initializers; int8 graphs: the quantized weights), scales
        and zero points of one element each included."""
        import onnx

        graph = onnx.load(str(self.folder / MODEL_FILE), load_external_data=False).graph
        return sum(int(np.prod(t.dims)) if t.dims else 1 for t in graph.initializer)

    def bytes_on_disk(self) -> int:
        return (self.folder / MODEL_FILE).stat().st_size

    def extra_repr(self) -> str:
        return f"{self.folder}, int8={self.config.get('int8')}"


def is_onnx_folder(path: Path) -> bool:
    return (path / MODEL_FILE).is_file() and (path / "config.json").is_file()
