"""Quantization: smaller numbers for weights (and activations), measured for what they buy.

* :func:`quantize_dynamic` — int8 weights, activations quantized per batch (Linear/LSTM/GRU);
* :func:`quantize_weights` — weight-only int8/int4 with group scales (memory, not speed, here);
* :func:`cast` — float16/bfloat16;
* :func:`to_onnx` — export (optionally int8 in ONNX Runtime), run back as :class:`OnnxModel`.

Every result saves with :func:`distill.save` as integer tensors and scales in safetensors
(no pickle) and comes back with :func:`distill.load`.
"""

from distill.quantize.cast import cast
from distill.quantize.dynamic import quantize_dynamic
from distill.quantize.onnx import OnnxModel, to_onnx
from distill.quantize.weight_only import WeightOnlyLinear, quantize_weights

__all__ = ["OnnxModel", "WeightOnlyLinear", "cast", "quantize_dynamic", "quantize_weights",
           "to_onnx"]
