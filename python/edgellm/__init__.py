"""edgellm: on-device LLM inference, Python bindings (ctypes) over the C API."""
from ._lib import EdgellmError
from .llama import Llama

__all__ = ["Llama", "EdgellmError"]
__version__ = "0.1.0"
