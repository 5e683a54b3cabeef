"""edgellm: on-device LLM inference, Python bindings (ctypes) over the C API."""
from ._lib import EdgellmError
from .llama import Llama, Router

__all__ = ["Llama", "Router", "EdgellmError"]
__version__ = "0.1.0"
