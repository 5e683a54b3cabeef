"""Independent NumPy reference of the edgellm forward pass (test tree only)."""
from .forward import Forward, greedy, log_softmax, perplexity
from .gguf_model import Config, Model, load_model
from .tokenizer import GGUFTokenizer

__all__ = ["Config", "Forward", "GGUFTokenizer", "Model", "greedy", "load_model", "log_softmax",
           "perplexity"]
