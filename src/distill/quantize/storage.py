"""Quantized models as plain tensors (for safetensors) and back, without pickle.

What is saved: the model's ordinary parameters and buffers, plus, for each quantized layer,
its integer weights and their scales as plain tensors. What loads it: the architecture is
rebuilt in fp32, given the same quantized structure (``distill_quantization`` in the config
says which), and the stored values are put in place.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

from distill.quantize.cast import DTYPES, attach_casts
from distill.quantize.weight_only import weight_only_shells


def _dynamic_linears(model: nn.Module) -> dict[str, nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {n: m for n, m in model.named_modules() if isinstance(m, DynamicLinear)}


GRAPH_KINDS = ("static-int8", "qat-int8")


def flatten_state(state: dict[str, Any]) -> dict[str, Tensor]:
    """A quantized state dict as plain tensors: integer values, scales and zero points for
    quantized tensors, one entry per element of packed tuples; dtypes are left to the model."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if isinstance(value, tuple | list):
            out.update(flatten_state({f"{key}.{i}": v for i, v in enumerate(value)}))
        elif isinstance(value, Tensor) and value.is_quantized:
            out[f"{key}.q_int"] = value.int_repr().contiguous()
            if value.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                out[f"{key}.q_scales"] = value.q_per_channel_scales().double().contiguous()
                out[f"{key}.q_zero_points"] = (  # small integers: 4 bytes, not 8
                    value.q_per_channel_zero_points().to(torch.int32).contiguous())
                out[f"{key}.q_axis"] = torch.tensor(value.q_per_channel_axis())
            else:
                out[f"{key}.q_scale"] = torch.tensor(value.q_scale(), dtype=torch.float64)
                out[f"{key}.q_zero_point"] = torch.tensor(value.q_zero_point())
        elif isinstance(value, Tensor):
            out[key] = value.detach().contiguous()
    return out


def unflatten_state(template: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    """The state dict shaped like ``template`` (a freshly built model's) from saved tensors."""
    def rebuild(key: str, like: Any) -> Any:
        if isinstance(like, tuple | list):
            return type(like)(rebuild(f"{key}.{i}", v) for i, v in enumerate(like))
        if isinstance(like, Tensor) and like.is_quantized:
            values = tensors[f"{key}.q_int"]
            if f"{key}.q_scales" in tensors:
                return torch._make_per_channel_quantized_tensor(
                    values, tensors[f"{key}.q_scales"], tensors[f"{key}.q_zero_points"].long(),
                    int(tensors[f"{key}.q_axis"]))
            return torch._make_per_tensor_quantized_tensor(
                values, float(tensors[f"{key}.q_scale"]), int(tensors[f"{key}.q_zero_point"]))
        if isinstance(like, Tensor):
            return tensors[key]
        return like  # a dtype or other setting: the structure's own
    try:
        state = OrderedDict((key, rebuild(key, like)) for key, like in template.items())
    except KeyError as err:
        raise ValueError(f"the saved tensors lack {err.args[0]}") from err
    # module versions: quantized layers read their state in the format their version names
    state._metadata = getattr(template, "_metadata", None)  # type: ignore[attr-defined]
    return state


def quantized_tensors(model: nn.Module) -> dict[str, Tensor]:
    """Every tensor needed to rebuild ``model``, as plain (non-quantized) tensors."""
    spec = model.distill_quantization
    if spec["kind"] in GRAPH_KINDS:
        return flatten_state(model.state_dict())
    if spec["kind"] != "dynamic-int8":
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    dynamic = _dynamic_linears(model)

    def inside_dynamic(name: str) -> bool:
        return any(name.startswith(f"{d}.") for d in dynamic)

    unsupported = [n for n, m in model.named_modules()
                   if type(m).__module__.startswith("torch.ao.nn.quantized")
                   and n not in dynamic and not inside_dynamic(n)]
    if unsupported:
        raise ValueError(f"saving dynamically quantized {unsupported[:3]} is not supported (only "
                         "Linear layers); export to ONNX instead (distill.quantize.to_onnx)")
    out: dict[str, Tensor] = {}
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if inside_dynamic(name):
            continue
        if name in dynamic:
            weight, bias = module._weight_bias()
            out[prefix + "weight_int8"] = weight.int_repr().contiguous()
            out[prefix + "weight_scales"] = weight.q_per_channel_scales().float().contiguous()
            out[prefix + "weight_zero_points"] = weight.q_per_channel_zero_points().contiguous()
            if bias is not None:
                out[prefix + "bias"] = bias.detach().contiguous()
            continue
        for key, value in list(module.named_parameters(recurse=False)) + list(
                module.named_buffers(recurse=False)):
            if value is not None:
                out[prefix + key] = value.detach().contiguous()
    return out


def restore(skeleton: nn.Module, spec: dict[str, Any], tensors: dict[str, Tensor]) -> nn.Module:
    """``skeleton`` (the fp32 architecture) given ``spec``'s quantized structure and values."""
    kind = spec.get("kind")
    if kind == "cast":
        model = skeleton.to(DTYPES[spec["dtype"]])
        model.load_state_dict(tensors)
        model = attach_casts(model, spec["dtype"])
    elif kind == "weight-only":
        weight_only_shells(skeleton, spec["layers"], spec["bits"], spec["group_size"])
        skeleton.load_state_dict(tensors)
        model = skeleton
    elif kind == "dynamic-int8":
        model = _restore_dynamic(skeleton, spec, tensors)
    elif kind in GRAPH_KINDS:
        from distill.quantize.static import structure_like

        model = structure_like(skeleton, spec)
        model.load_state_dict(unflatten_state(model.state_dict(), tensors))
    else:
        raise ValueError(f"unknown quantization kind {kind!r} in the saved config")
    model.distill_quantization = spec
    return model.eval()


def _restore_dynamic(skeleton: nn.Module, spec: dict[str, Any],
                     tensors: dict[str, Tensor]) -> nn.Module:
    from distill.quantize.dynamic import quantize_dynamic

    names = set(spec["layers"])
    model = quantize_dynamic(skeleton, skip=[n for n, m in skeleton.named_modules()
                                             if isinstance(m, nn.Linear) and n not in names],
                             keep_float=())  # the saved layer list is the whole truth
    for name, module in _dynamic_linears(model).items():
        prefix = f"{name}." if name else ""
        weight = torch._make_per_channel_quantized_tensor(
            tensors.pop(prefix + "weight_int8"), tensors.pop(prefix + "weight_scales").double(),
            tensors.pop(prefix + "weight_zero_points"), 0)
        module.set_weight_bias(weight, tensors.pop(prefix + "bias", None))
    dynamic = _dynamic_linears(model)
    with torch.no_grad():  # the ordinary layers: their own parameters and buffers, in place
        for name, module in model.named_modules():
            if name in dynamic or any(name.startswith(f"{d}.") for d in dynamic):
                continue
            prefix = f"{name}." if name else ""
            for key, value in list(module.named_parameters(recurse=False)) + list(
                    module.named_buffers(recurse=False)):
                if value is None:
                    continue
                if prefix + key not in tensors:
                    raise ValueError(f"the saved tensors lack {prefix + key}")
                value.copy_(tensors.pop(prefix + key))
    if tensors:
        raise ValueError(f"saved tensors the model has no place for: {sorted(tensors)[:5]}")
    return model
