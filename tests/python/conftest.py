"""Shared pytest fixtures for the Python reference tests.

Models are located through EDGELLM_MODEL_DIR (default ~/.cache/edgellm/models); a test whose
model file is absent is skipped with the path it looked for. EDGELLM_BIN is the built CLI.
"""
from __future__ import annotations

import os

# OpenBLAS threads spin; on a 2-core machine shared with a build they slow NumPy down ~10x.
# Must be set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_MODEL = "gemma-3-270m-q4_k_m.gguf"
CLI_TIMEOUT_S = 900


def model_dir() -> Path:
    return Path(os.environ.get("EDGELLM_MODEL_DIR", Path.home() / ".cache" / "edgellm" / "models"))


def model_path_or_skip(name: str) -> str:
    p = model_dir() / name
    if not p.is_file():
        pytest.skip(f"model file {p} is absent (set EDGELLM_MODEL_DIR or run the fetch script)")
    return str(p)


def results_path(name: str) -> Path:
    """Where tests drop their measured figures as JSON (for reports)."""
    d = Path(os.environ.get("EDGELLM_RESULTS_DIR", Path(tempfile.gettempdir()) / "edgellm-results"))
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def write_results(name: str, data) -> Path:
    p = results_path(name)
    p.write_text(json.dumps(data, indent=2))
    return p


class EngineError(RuntimeError):
    """The CLI exited non-zero; message carries its stderr."""


class Engine:
    """Thin wrapper over the edgellm CLI subcommands the reference tests use."""

    def __init__(self, path: str):
        self.path = path

    def run(self, args: list[str], stdin: str | None = None) -> str:
        proc = subprocess.run([self.path, *args], input=stdin, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S)
        if proc.returncode != 0:
            raise EngineError(f"`edgellm {' '.join(args[:3])} ...` exited {proc.returncode}: "
                              f"{proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def logits(self, model: str, ids, n_vocab: int, threads: int = 2, exact: bool = False) -> np.ndarray:
        """Engine logits for every position: float32 [len(ids), n_vocab]. exact: fp32 activations."""
        with tempfile.TemporaryDirectory() as td:
            out = os.path.join(td, "logits.f32")
            self.run(["logits", "-m", model, "--ids", ",".join(map(str, ids)), "--out", out,
                      "-t", str(threads)] + (["--exact"] if exact else []))
            raw = np.fromfile(out, dtype="<f4")
        if raw.size != len(ids) * n_vocab:
            raise EngineError(f"logits file has {raw.size} floats, expected {len(ids)}*{n_vocab}")
        return raw.reshape(len(ids), n_vocab)

    def tokenize(self, model: str, texts: list[str], special: bool = False) -> list[list[int]]:
        args = ["tokenize", "-m", model, "--jsonl"] + (["--special"] if special else [])
        stdin = "".join(json.dumps(t) + "\n" for t in texts)
        lines = self.run(args, stdin=stdin).splitlines()
        return [json.loads(line) for line in lines]

    def perplexity(self, model: str, text_file: str, ctx: int, chunks: int, threads: int = 2,
                   exact: bool = False) -> dict:
        out = self.run(["perplexity", "-m", model, "-f", text_file, "-c", str(ctx),
                        "--chunks", str(chunks), "-t", str(threads), "--json"] + (["--exact"] if exact else []))
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def engine() -> Engine:
    path = os.environ.get("EDGELLM_BIN") or shutil.which("edgellm")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("EDGELLM_BIN is not set to the built edgellm CLI")
    return Engine(path)


@pytest.fixture(scope="session")
def smollm_path() -> str:
    return model_path_or_skip(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def gemma3_path() -> str:
    return model_path_or_skip(GEMMA3_MODEL)


_REFERENCE_CACHE: dict[str, object] = {}


def reference_model(path: str):
    """Dequantized reference model, loaded once per session (a few seconds, ~1 GB for gemma3)."""
    import reference
    if path not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[path] = reference.load_model(path)
    return _REFERENCE_CACHE[path]
