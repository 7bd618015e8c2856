"""The CPU a latency was measured on, with the instruction sets that decide int8 speed."""

from __future__ import annotations

from distill.evaluate.hardware import cpu_features, describe_cpu

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse4_1 sse4_2 avx f16c fma avx2

processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse4_1 sse4_2 avx f16c fma avx2
"""
SAPPHIRE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp sve i8mm bf16
CPU implementer\t: 0x41
"""


def test_avx2_without_vnni_says_what_is_missing(tmp_path):
    (tmp_path / "cpuinfo").write_text(EPYC)
    found = cpu_features(tmp_path / "cpuinfo")
    assert found["model"] == "AMD EPYC" and found["features"] == ["AVX2", "FMA"]
    assert found["absent"] == ["AVX-512", "AVX-512 VNNI", "AVX-VNNI", "AMX-INT8"]
    line = describe_cpu(found)
    assert line.startswith("AMD EPYC, ") and "AVX2, FMA (no AVX-512, AVX-512 VNNI" in line


def test_vnni_and_amx_are_named(tmp_path):
    (tmp_path / "cpuinfo").write_text(SAPPHIRE)
    found = cpu_features(tmp_path / "cpuinfo")
    assert found["features"] == ["AVX2", "FMA", "AVX-512", "AVX-512 VNNI", "AVX-512 BF16",
                                 "AMX-INT8", "AMX-BF16"]
    assert found["absent"] == ["AVX-VNNI"]


def test_arm_features_come_from_their_own_field(tmp_path):
    (tmp_path / "cpuinfo").write_text(GRAVITON)
    found = cpu_features(tmp_path / "cpuinfo")
    assert found["features"] == ["NEON", "dot product", "I8MM", "BF16", "SVE"]
    assert found["absent"] == []


def test_unknown_cpu_is_said_to_be_unknown(tmp_path):
    found = cpu_features(tmp_path / "missing")
    assert not found["known"] and found["features"] == [] and found["absent"] == []
    assert "instruction sets unknown" in describe_cpu(found)
