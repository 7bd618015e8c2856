"""Quantization: smaller numbers for weights (and activations), measured for what they buy.

* :func:`quantize_dynamic` — int8 weights, activations quantized per batch (Linear/LSTM/GRU);
* :func:`quantize_static` — int8 throughout, activation ranges calibrated on data (CNN/MLP);
* :func:`prepare_qat` / :func:`convert_qat` — quantization-aware training (e.g. distilled),
  static (CNN/MLP) or dynamic (any Linear layers, transformers included);
* :func:`quantize_weights` — weight-only int8/int4 with group scales (memory, not speed, here);
* :func:`cast` — float16/bfloat16;
* :func:`to_onnx` — export (optionally int8 in ONNX Runtime), run back as :class:`OnnxModel`.

Every result saves with :func:`distill.save` as integer tensors and scales in safetensors
(no pickle) and comes back with :func:`distill.load`.
"""

from distill.quantize.cast import cast
from distill.quantize.dynamic import quantize_dynamic
from distill.quantize.onnx import OnnxModel, to_onnx
from distill.quantize.qat import convert_qat, prepare_qat, without_fake_quant
from distill.quantize.static import quantize_static
from distill.quantize.weight_only import WeightOnlyLinear, quantize_weights

__all__ = ["OnnxModel", "WeightOnlyLinear", "cast", "convert_qat", "prepare_qat",
           "quantize_dynamic", "quantize_static", "quantize_weights", "to_onnx",
           "without_fake_quant"]
