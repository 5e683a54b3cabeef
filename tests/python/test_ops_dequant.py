"""Dequantization of every supported GGML type checked against the `gguf` PyPI package.

Design (independent of our code): this test draws random quantized blocks with numpy,
dequantizes them with `gguf.quants.dequantize` (the reference), and writes both into a small
GGUF file with `gguf.GGUFWriter` ("q.<TYPE>" = raw quantized tensor, "ref.<TYPE>" = F32
reference). It then runs the C++ gtest `GgufDequant.*` from the test_ops binary with
EDGELLM_DEQUANT_GGUF pointing at that file; the C++ side opens it with our GGUF reader and
compares ops::dequantize_row (and a matmul against a one-hot input) with the references.
So the expected numbers never come from our code, and the reader is exercised as well.
"""
import os
import pathlib
import subprocess

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

# type -> byte offsets of fp16 fields inside one block (must be finite numbers)
FP16_FIELDS = {
    T.Q8_0: [0], T.Q4_0: [0], T.Q5_0: [0], T.Q4_1: [0, 2], T.Q5_1: [0, 2],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
ROWS = 7


def random_tensor(rng, qtype, n_in):
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * n_in // block_elems
    if qtype == T.F32:
        raw = rng.standard_normal(ROWS * n_in).astype(np.float32).view(np.uint8)
    elif qtype == T.F16:
        raw = (rng.standard_normal(ROWS * n_in) * 4).astype(np.float16).view(np.uint8)
    elif qtype == T.BF16:
        f = rng.standard_normal(ROWS * n_in).astype(np.float32).view(np.uint32)
        raw = (f >> 16).astype(np.uint16).view(np.uint8)
    else:
        raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
        for off in FP16_FIELDS[qtype]:
            vals = rng.uniform(-2.0, 2.0, size=n_blocks).astype(np.float16)
            raw[:, off:off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(ROWS, -1)


def test_dequant_matches_gguf_package(tmp_path: pathlib.Path):
    bin_path = os.environ.get("EDGELLM_BIN")
    if not bin_path:
        pytest.skip("EDGELLM_BIN not set (run through ctest)")
    test_ops = pathlib.Path(bin_path).parent / "tests" / "test_ops"
    if not test_ops.exists():
        pytest.skip(f"{test_ops} not built")

    rng = np.random.default_rng(1234)
    path = tmp_path / "dequant.gguf"
    w = gguf.GGUFWriter(str(path), arch="edgellm-ops-test")
    types = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K]
    for qtype in types:
        n_in = 512  # two K-quant super-blocks, 16 legacy blocks per row
        raw = random_tensor(rng, qtype, n_in)
        ref = dequantize(raw, qtype).astype(np.float32).reshape(ROWS, n_in)
        assert np.all(np.isfinite(ref))
        w.add_tensor(f"q.{qtype.name}", raw, raw_dtype=qtype)
        w.add_tensor(f"ref.{qtype.name}", ref)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    env = dict(os.environ, EDGELLM_DEQUANT_GGUF=str(path), EDGELLM_DEQUANT_EXPECT=str(len(types)))
    res = subprocess.run([str(test_ops), "--gtest_filter=GgufDequant.*"], env=env,
                         capture_output=True, text=True, timeout=300)
    print(res.stdout[-4000:], res.stderr[-2000:])
    assert res.returncode == 0
    assert "[  PASSED  ] 1 test" in res.stdout
    assert "SKIPPED" not in res.stdout
