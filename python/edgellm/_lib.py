"""ctypes declarations of include/edgellm/edgellm.h (API version 1)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

API_VERSION = 1

c_size_p = ctypes.POINTER(ctypes.c_size_t)


class EdgellmError(RuntimeError):
    """A failed C API call: `status` is the edgellm_status name, the message says what is wrong."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{message} ({status})")
        self.status = status


class ModelOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_threads", ctypes.c_int32)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("architecture", ctypes.c_char_p), ("name", ctypes.c_char_p),
                ("n_vocab", ctypes.c_int32), ("n_ctx_train", ctypes.c_int32), ("n_embd", ctypes.c_int32),
                ("n_layer", ctypes.c_int32), ("n_head", ctypes.c_int32), ("n_head_kv", ctypes.c_int32),
                ("bos_token", ctypes.c_int32), ("eos_token", ctypes.c_int32), ("file_size", ctypes.c_uint64),
                ("embedding_only", ctypes.c_bool)]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class SamplingParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("temperature", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("top_p", ctypes.c_float), ("min_p", ctypes.c_float), ("repeat_penalty", ctypes.c_float),
                ("repeat_last_n", ctypes.c_int32), ("presence_penalty", ctypes.c_float),
                ("frequency_penalty", ctypes.c_float), ("seed", ctypes.c_uint64)]


class SessionOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_ctx", ctypes.c_int32), ("type_k", ctypes.c_int),
                ("type_v", ctypes.c_int), ("sampling", ctypes.POINTER(SamplingParams))]


TOKEN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_int32, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t,
                                  ctypes.c_void_p)


class GenerateOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("max_tokens", ctypes.c_int32),
                ("stop", ctypes.POINTER(ctypes.c_char_p)), ("n_stop", ctypes.c_size_t), ("ignore_eos", ctypes.c_bool),
                ("json_schema", ctypes.c_char_p), ("on_token", TOKEN_CALLBACK), ("user_data", ctypes.c_void_p)]


class GenerateResult(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("finish_reason", ctypes.c_int),
                ("text", ctypes.POINTER(ctypes.c_char)), ("text_len", ctypes.c_size_t),
                ("tokens", ctypes.POINTER(ctypes.c_int32)), ("n_tokens", ctypes.c_int32), ("n_prompt", ctypes.c_int32),
                ("n_prompt_evaluated", ctypes.c_int32), ("prefill_seconds", ctypes.c_double),
                ("decode_seconds", ctypes.c_double)]


class RoutedResult(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("tier", ctypes.c_int), ("finish_reason", ctypes.c_int),
                ("text", ctypes.POINTER(ctypes.c_char)), ("text_len", ctypes.c_size_t), ("route_json", ctypes.c_char_p),
                ("tool_calls_json", ctypes.c_char_p), ("prompt_tokens", ctypes.c_int64),
                ("completion_tokens", ctypes.c_int64)]


class BatchOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("n_seq", ctypes.c_int32), ("n_ctx", ctypes.c_int32),
                ("type_k", ctypes.c_int), ("type_v", ctypes.c_int), ("n_batch", ctypes.c_int32)]


class BatchItem(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("prompt", ctypes.POINTER(ctypes.c_int32)),
                ("n_prompt", ctypes.c_size_t), ("messages", ctypes.POINTER(ChatMessage)),
                ("n_messages", ctypes.c_size_t), ("sampling", ctypes.POINTER(SamplingParams)),
                ("options", ctypes.POINTER(GenerateOptions)), ("result", ctypes.POINTER(GenerateResult)),
                ("status", ctypes.c_int)]


class BatchStats(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("passes", ctypes.c_uint64), ("tokens", ctypes.c_uint64),
                ("n_seq", ctypes.c_int32)]


FINISH_REASONS = {0: "stop", 1: "length", 2: "cancelled"}
TIERS = {0: "device", 1: "cloud"}
KV_TYPES = {"f32": 0, "f16": 1, "q8_0": 2, "q4_0": 3}


def _find_library() -> str:
    env = os.environ.get("EDGELLM_LIBRARY")
    if env:
        return env
    bundled = Path(__file__).resolve().parent / "libedgellm.so"
    if bundled.is_file():
        return str(bundled)
    found = ctypes.util.find_library("edgellm")
    if found:
        return found
    raise OSError("libedgellm.so not found: set EDGELLM_LIBRARY, or install the package from a tree where "
                  "build/lib/libedgellm.so is built (python/README.md)")


def _declare(lib: ctypes.CDLL) -> None:
    P = ctypes.c_void_p
    st = ctypes.c_int
    sigs = {
        "edgellm_last_error": (ctypes.c_char_p, []),
        "edgellm_status_name": (ctypes.c_char_p, [st]),
        "edgellm_api_version": (ctypes.c_int, []),
        "edgellm_version": (ctypes.c_char_p, []),
        "edgellm_model_options_init": (st, [ctypes.POINTER(ModelOptions), ctypes.c_size_t]),
        "edgellm_model_load": (st, [ctypes.c_char_p, ctypes.POINTER(ModelOptions), ctypes.POINTER(P)]),
        "edgellm_model_free": (None, [P]),
        "edgellm_model_get_info": (st, [P, ctypes.POINTER(ModelInfo)]),
        "edgellm_model_meta": (st, [P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
        "edgellm_token_is_eog": (ctypes.c_bool, [P, ctypes.c_int32]),
        "edgellm_tokenize": (st, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool, ctypes.c_bool,
                                  ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, c_size_p]),
        "edgellm_detokenize": (st, [P, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.c_bool,
                                    ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
        "edgellm_chat_render": (st, [P, ctypes.POINTER(ChatMessage), ctypes.c_size_t, ctypes.c_bool, ctypes.c_char_p,
                                     ctypes.c_size_t, c_size_p]),
        "edgellm_sampling_params_init": (st, [ctypes.POINTER(SamplingParams), ctypes.c_size_t]),
        "edgellm_session_options_init": (st, [ctypes.POINTER(SessionOptions), ctypes.c_size_t]),
        "edgellm_session_create": (st, [P, ctypes.POINTER(SessionOptions), ctypes.POINTER(P)]),
        "edgellm_session_free": (None, [P]),
        "edgellm_session_reset": (st, [P]),
        "edgellm_session_set_sampling": (st, [P, ctypes.POINTER(SamplingParams)]),
        "edgellm_session_save": (st, [P, ctypes.c_char_p]),
        "edgellm_session_load": (st, [P, ctypes.c_char_p]),
        "edgellm_session_n_ctx": (ctypes.c_int32, [P]),
        "edgellm_session_n_tokens": (ctypes.c_int32, [P]),
        "edgellm_generate_options_init": (st, [ctypes.POINTER(GenerateOptions), ctypes.c_size_t]),
        "edgellm_generate": (st, [P, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.POINTER(GenerateOptions),
                                  ctypes.POINTER(GenerateResult)]),
        "edgellm_chat": (st, [P, ctypes.POINTER(ChatMessage), ctypes.c_size_t, ctypes.POINTER(GenerateOptions),
                              ctypes.POINTER(GenerateResult)]),
        "edgellm_embed": (st, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool, ctypes.POINTER(ctypes.c_float),
                               ctypes.c_size_t, c_size_p]),
        "edgellm_model_embed": (st, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool,
                                     ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, c_size_p]),
        "edgellm_router_create": (st, [ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(P)]),
        "edgellm_router_free": (None, [P]),
        "edgellm_chat_routed": (st, [P, P, ctypes.POINTER(ChatMessage), ctypes.c_size_t,
                                     ctypes.POINTER(GenerateOptions), ctypes.POINTER(RoutedResult)]),
        "edgellm_batch_options_init": (st, [ctypes.POINTER(BatchOptions), ctypes.c_size_t]),
        "edgellm_batch_create": (st, [P, ctypes.POINTER(BatchOptions), ctypes.POINTER(P)]),
        "edgellm_batch_free": (None, [P]),
        "edgellm_batch_generate": (st, [P, ctypes.POINTER(BatchItem), ctypes.c_size_t]),
        "edgellm_batch_get_stats": (st, [P, ctypes.POINTER(BatchStats)]),
        "edgellm_lora_load": (st, [P, ctypes.c_char_p, ctypes.POINTER(P)]),
        "edgellm_lora_free": (None, [P]),
        "edgellm_session_set_lora": (st, [P, ctypes.POINTER(P), ctypes.POINTER(ctypes.c_float), ctypes.c_size_t]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        l = ctypes.CDLL(_find_library())
        _declare(l)
        if l.edgellm_api_version() != API_VERSION:
            raise OSError(f"libedgellm has API version {l.edgellm_api_version()}; these bindings need {API_VERSION}")
        _lib = l
    return _lib


def check(status: int) -> None:
    if status != 0:
        l = lib()
        raise EdgellmError(l.edgellm_status_name(status).decode(), l.edgellm_last_error().decode("utf-8", "replace"))


def init(struct_type, init_name: str):
    s = struct_type()
    check(getattr(lib(), init_name)(ctypes.byref(s), ctypes.sizeof(s)))
    return s
