"""Helpers of the Whisper tests (issue #13): an independent NumPy reader of CTranslate2's
model.bin, the model folders, and the speech clips."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import model_dir

SOURCE_DIR = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: None}


def ct2_dir_or_skip(size: str = "tiny") -> Path:
    d = model_dir() / f"whisper-{size}-ct2"
    if not (d / "model.bin").is_file():
        pytest.skip(f"{d} is absent (scripts/fetch-models whisper-{size})")
    return d


def read_ct2(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """{name: array} of a CTranslate2 model.bin (version 6) and its aliases, read with struct."""
    buf = Path(path).read_bytes()
    off = 0

    def take(fmt):
        nonlocal off
        vals = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal off
        (n,) = take("H")
        s = buf[off:off + n - 1].decode()
        off += n
        return s

    (version,) = take("I")
    assert version == 6
    string()
    take("I")
    (count,) = take("I")
    variables = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        dims = take(f"{rank}I") if rank else ()
        type_id, nbytes = take("B")[0], take("I")[0]
        variables[name] = np.frombuffer(buf, dtype=CT2_DTYPES[type_id], count=nbytes // np.dtype(CT2_DTYPES[type_id]).itemsize,
                                        offset=off).reshape(dims)
        off += nbytes
    (n_alias,) = take("I")
    aliases = {}
    for _ in range(n_alias):
        a = string()
        aliases[a] = string()
    assert off == len(buf)
    return variables, aliases


def make_clips(out: Path, limit: int = 0) -> list:
    import json
    args = [sys.executable, str(SOURCE_DIR / "scripts" / "make-speech-clips"), str(out)]
    if limit:
        args += ["--limit", str(limit)]
    subprocess.run(args, check=True, capture_output=True)
    return json.loads((out / "clips.json").read_text(encoding="utf-8"))
