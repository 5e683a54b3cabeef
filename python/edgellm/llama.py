"""Llama: a model and one session, with llama-cpp-python's interface."""
from __future__ import annotations

import ctypes
import json
import queue
import threading
import time
import uuid
from typing import Any, Iterator

from . import _lib as L


class _Handle:
    """Subclasses free their C handles in close(); this calls it when the object is garbage-collected
    and at the end of a `with` block."""

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Router(_Handle):
    """Hybrid device/cloud routing in-process (docs/hybrid.md): a policy (dict or JSON text) for
    create_chat_completion(router=...). n_ctx: the device's context per request (0: unknown)."""

    def __init__(self, policy: dict[str, Any] | str, n_ctx: int = 0):
        text = policy if isinstance(policy, str) else json.dumps(policy)
        self._h = ctypes.c_void_p()
        L.check(L.lib().edgellm_router_create(text.encode(), n_ctx, ctypes.byref(self._h)))

    def close(self) -> None:
        if self._h:
            L.lib().edgellm_router_free(self._h)
            self._h = ctypes.c_void_p()


class Llama(_Handle):
    def __init__(self, model_path: str, n_ctx: int = 4096, n_threads: int = 0, seed: int | None = None,
                 type_k: str = "f32", type_v: str = "f32", verbose: bool = False, lora_path: str | None = None,
                 lora_scale: float = 1.0):
        """A text generator gets one session; a sentence-embedding model (BERT) none: it only embeds
        and tokenizes. lora_path: a LoRA adapter (GGUF) applied at lora_scale (set_lora changes it)."""
        lib = L.lib()
        self._loras: list[ctypes.c_void_p] = []
        mo = L.init(L.ModelOptions, "edgellm_model_options_init")
        mo.n_threads = n_threads
        self._model = ctypes.c_void_p()
        self._session = ctypes.c_void_p()
        L.check(lib.edgellm_model_load(str(model_path).encode(), ctypes.byref(mo), ctypes.byref(self._model)))
        self.model_path = str(model_path)
        self._seed = seed
        info = L.ModelInfo()
        info.struct_size = ctypes.sizeof(info)
        L.check(lib.edgellm_model_get_info(self._model, ctypes.byref(info)))
        self.architecture = info.architecture.decode()
        self._n_vocab, self._n_embd, self._n_ctx_train = info.n_vocab, info.n_embd, info.n_ctx_train
        self._bos, self._eos = info.bos_token, info.eos_token
        self.embedding_only = bool(info.embedding_only)
        if self.embedding_only:
            return
        so = L.init(L.SessionOptions, "edgellm_session_options_init")
        so.n_ctx = n_ctx
        if type_k not in L.KV_TYPES or type_v not in L.KV_TYPES:
            raise ValueError(f"type_k / type_v: one of {sorted(L.KV_TYPES)}")
        so.type_k, so.type_v = L.KV_TYPES[type_k], L.KV_TYPES[type_v]
        L.check(lib.edgellm_session_create(self._model, ctypes.byref(so), ctypes.byref(self._session)))
        if lora_path is not None:
            self.set_lora([(lora_path, lora_scale)])

    def set_lora(self, adapters: list[tuple[str, float]]) -> None:
        """The LoRA adapters (path, scale) generation uses from now on; [] for the base model."""
        self._need_session("set_lora")
        lib = L.lib()
        loaded = []
        try:
            for path, _ in adapters:
                h = ctypes.c_void_p()
                L.check(lib.edgellm_lora_load(self._model, str(path).encode(), ctypes.byref(h)))
                loaded.append(h)
            arr = (ctypes.c_void_p * max(1, len(loaded)))(*loaded)
            scales = (ctypes.c_float * max(1, len(loaded)))(*[float(s) for _, s in adapters])
            L.check(lib.edgellm_session_set_lora(self._session, arr, scales, len(loaded)))
        finally:
            for h in loaded:  # the session keeps what it uses
                lib.edgellm_lora_free(h)

    def _need_session(self, what: str) -> None:
        if self.embedding_only:
            raise ValueError(f"{what}: {self.model_path} is a sentence-embedding model; it only embeds and tokenizes")

    def close(self) -> None:
        lib = L.lib()
        if self._session:
            lib.edgellm_session_free(self._session)
            self._session = ctypes.c_void_p()
        if self._model:
            lib.edgellm_model_free(self._model)
            self._model = ctypes.c_void_p()

    # ---- model ---------------------------------------------------------------------------------
    def n_ctx(self) -> int:
        return L.lib().edgellm_session_n_ctx(self._session)

    def n_vocab(self) -> int:
        return self._n_vocab

    def n_embd(self) -> int:
        return self._n_embd

    def token_bos(self) -> int:
        return self._bos

    def token_eos(self) -> int:
        return self._eos

    @property
    def metadata(self) -> dict[str, str]:
        """A few GGUF metadata values as text (general.*, the context length)."""
        out = {}
        for key in ("general.architecture", "general.name", f"{self.architecture}.context_length"):
            try:
                out[key] = self._meta(key)
            except L.EdgellmError:
                pass
        return out

    def _meta(self, key: str) -> str:
        return self._text_call(lambda buf, size, n: L.lib().edgellm_model_meta(self._model, key.encode(), buf, size, n))

    @staticmethod
    def _text_call(call) -> str:
        n = ctypes.c_size_t(0)
        st = call(None, 0, ctypes.byref(n))
        if st == 0:
            return ""
        if st != 4:  # EDGELLM_ERR_BUFFER_TOO_SMALL: measured
            L.check(st)
        buf = ctypes.create_string_buffer(n.value + 1)
        L.check(call(buf, n.value + 1, ctypes.byref(n)))
        return buf.raw[: n.value].decode("utf-8", "replace")

    # ---- conversation state ----------------------------------------------------------------------
    def save_session(self, path: str) -> None:
        """Writes the conversation's tokens and KV cache; load_session resumes it (same model)."""
        L.check(L.lib().edgellm_session_save(self._session, str(path).encode()))

    def load_session(self, path: str) -> None:
        L.check(L.lib().edgellm_session_load(self._session, str(path).encode()))

    def n_tokens(self) -> int:
        """Tokens the session's cache holds."""
        return L.lib().edgellm_session_n_tokens(self._session)

    # ---- tokens ----------------------------------------------------------------------------------
    def tokenize(self, text: bytes | str, add_bos: bool = True, special: bool = False) -> list[int]:
        data = text.encode() if isinstance(text, str) else bytes(text)
        n = ctypes.c_size_t(0)
        lib = L.lib()
        st = lib.edgellm_tokenize(self._model, data, len(data), add_bos, special, None, 0, ctypes.byref(n))
        if st == 0:
            return []
        if st != 4:
            L.check(st)
        arr = (ctypes.c_int32 * n.value)()
        L.check(lib.edgellm_tokenize(self._model, data, len(data), add_bos, special, arr, n.value, ctypes.byref(n)))
        return list(arr[: n.value])

    def detokenize(self, tokens: list[int], special: bool = False) -> bytes:
        arr = (ctypes.c_int32 * len(tokens))(*tokens)
        text = self._text_call(lambda buf, size, n: L.lib().edgellm_detokenize(self._model, arr, len(tokens),
                                                                                 not special, buf, size, n))
        return text.encode()

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        msgs, _keep = _messages(messages)
        return self._text_call(lambda buf, size, n: L.lib().edgellm_chat_render(
            self._model, msgs, len(messages), add_generation_prompt, buf, size, n))

    # ---- embeddings --------------------------------------------------------------------------
    def embed(self, input: str | list[str], normalize: bool = True) -> list[float] | list[list[float]]:
        """A sentence-embedding model's vector (unit length); for a text generator the mean-pooled final
        hidden states (unit length when normalize). A list for a list."""
        if isinstance(input, list):
            return [self.embed(t, normalize) for t in input]
        data = input.encode()
        out = (ctypes.c_float * self._n_embd)()
        n = ctypes.c_size_t(0)
        if self.embedding_only:
            L.check(L.lib().edgellm_model_embed(self._model, data, len(data), normalize, out, self._n_embd,
                                                ctypes.byref(n)))
            return list(out[: n.value])
        L.check(L.lib().edgellm_embed(self._session, data, len(data), normalize, out, self._n_embd, ctypes.byref(n)))
        return list(out[: n.value])

    def create_embedding(self, input: str | list[str]) -> dict[str, Any]:
        texts = input if isinstance(input, list) else [input]
        data = [{"object": "embedding", "index": i, "embedding": self.embed(t)} for i, t in enumerate(texts)]
        n_tokens = sum(len(self.tokenize(t)) for t in texts)
        return {"object": "list", "model": self.model_path, "data": data,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}

    # ---- generation --------------------------------------------------------------------------
    def _sampling(self, temperature, top_k, top_p, min_p, repeat_penalty, seed):
        sp = L.init(L.SamplingParams, "edgellm_sampling_params_init")
        sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty = temperature, top_k, top_p, min_p, repeat_penalty
        if seed is not None:
            sp.seed = seed & 0xFFFFFFFFFFFFFFFF
        elif self._seed is not None:
            sp.seed = self._seed & 0xFFFFFFFFFFFFFFFF
        L.check(L.lib().edgellm_session_set_sampling(self._session, ctypes.byref(sp)))

    def create_chat_completion(self, messages: list[dict[str, str]], stream: bool = False, max_tokens: int | None = None,
                               temperature: float = 0.2, top_p: float = 0.95, top_k: int = 40, min_p: float = 0.05,
                               repeat_penalty: float = 1.0, stop: str | list[str] | None = None,
                               seed: int | None = None, response_format: dict[str, Any] | None = None,
                               router: Router | None = None):
        """OpenAI-shaped chat completion (a dict, or an iterator of chunks when stream). With a router the
        policy picks device or cloud; the answer then carries "tier" and "route" (the route record)."""
        self._need_session("create_chat_completion")
        self._sampling(temperature, top_k, top_p, min_p, repeat_penalty, seed)
        msgs, keep = _messages(messages)
        go = L.init(L.GenerateOptions, "edgellm_generate_options_init")
        go.max_tokens = -1 if max_tokens is None else max_tokens
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        stop_arr = (ctypes.c_char_p * len(stops))(*[s.encode() for s in stops])
        if stops:
            go.stop, go.n_stop = stop_arr, len(stops)
        schema = _schema(response_format)
        if schema is not None:
            go.json_schema = schema
        keep += [stop_arr, schema]
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        if stream:
            return self._stream(msgs, len(messages), go, keep, cid, created, router)
        res = self._run(msgs, len(messages), go, router)
        out = {"id": cid, "object": "chat.completion", "created": created, "model": self.model_path,
               "choices": [{"index": 0, "message": {"role": "assistant", "content": res["text"]},
                            "finish_reason": res["finish_reason"]}],
               "usage": res["usage"]}
        if router is not None:
            out["tier"], out["route"] = res["tier"], res["route"]
            if res["tool_calls"]:
                out["choices"][0]["message"]["tool_calls"] = res["tool_calls"]
        return out

    def create_chat_completions(self, conversations: list[list[dict[str, str]]], max_tokens: int | None = None,
                                temperature: float = 0.2, top_p: float = 0.95, top_k: int = 40, min_p: float = 0.05,
                                repeat_penalty: float = 1.0, seed: int | None = None, n_seq: int = 4,
                                stats: dict[str, int] | None = None) -> list[dict[str, Any]]:
        """One chat completion per conversation, decoded together in batched forward passes
        (edgellm_batch_generate, at most n_seq at once). Greedy answers equal
        create_chat_completion's. stats, if given, receives the batch's "passes" and "tokens"."""
        self._need_session("create_chat_completions")
        lib = L.lib()
        sp = L.init(L.SamplingParams, "edgellm_sampling_params_init")
        sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.repeat_penalty = temperature, top_k, top_p, min_p, repeat_penalty
        if seed is not None or self._seed is not None:
            sp.seed = (seed if seed is not None else self._seed) & 0xFFFFFFFFFFFFFFFF
        go = L.init(L.GenerateOptions, "edgellm_generate_options_init")
        go.max_tokens = -1 if max_tokens is None else max_tokens
        bo = L.init(L.BatchOptions, "edgellm_batch_options_init")
        bo.n_seq, bo.n_ctx = max(1, min(n_seq, len(conversations))), self.n_ctx()
        n = len(conversations)
        items = (L.BatchItem * max(1, n))()
        results = (L.GenerateResult * max(1, n))()
        keep = []
        for i, conv in enumerate(conversations):
            msgs, k = _messages(conv)
            keep += [msgs, k]
            results[i].struct_size = ctypes.sizeof(L.GenerateResult)
            it = items[i]
            it.struct_size = ctypes.sizeof(it)
            it.messages, it.n_messages = msgs, len(conv)
            it.sampling, it.options = ctypes.pointer(sp), ctypes.pointer(go)
            it.result = ctypes.pointer(results[i])
        batch = ctypes.c_void_p()
        L.check(lib.edgellm_batch_create(self._model, ctypes.byref(bo), ctypes.byref(batch)))
        try:
            L.check(lib.edgellm_batch_generate(batch, items, n))
            if stats is not None:
                st = L.BatchStats()
                st.struct_size = ctypes.sizeof(st)
                L.check(lib.edgellm_batch_get_stats(batch, ctypes.byref(st)))
                stats.update(passes=st.passes, tokens=st.tokens)
            created = int(time.time())
            out = []
            for i in range(n):
                r = results[i]
                out.append({"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
                            "created": created, "model": self.model_path,
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": ctypes.string_at(
                                r.text, r.text_len).decode("utf-8", "replace")},
                                "finish_reason": L.FINISH_REASONS[r.finish_reason]}],
                            "usage": {"prompt_tokens": r.n_prompt, "completion_tokens": r.n_tokens,
                                      "total_tokens": r.n_prompt + r.n_tokens}})
            return out
        finally:
            lib.edgellm_batch_free(batch)

    def _run(self, msgs, n, go, router: Router | None = None) -> dict[str, Any]:
        lib = L.lib()
        if router is None:
            r = L.GenerateResult()
            r.struct_size = ctypes.sizeof(r)
            L.check(lib.edgellm_chat(self._session, msgs, n, ctypes.byref(go), ctypes.byref(r)))
            return {"text": ctypes.string_at(r.text, r.text_len).decode("utf-8", "replace"),
                    "finish_reason": L.FINISH_REASONS[r.finish_reason],
                    "usage": {"prompt_tokens": r.n_prompt, "completion_tokens": r.n_tokens,
                              "total_tokens": r.n_prompt + r.n_tokens}}
        r = L.RoutedResult()
        r.struct_size = ctypes.sizeof(r)
        L.check(lib.edgellm_chat_routed(router._h, self._session, msgs, n, ctypes.byref(go), ctypes.byref(r)))
        calls = r.tool_calls_json.decode() if r.tool_calls_json else ""
        return {"text": ctypes.string_at(r.text, r.text_len).decode("utf-8", "replace"),
                "finish_reason": L.FINISH_REASONS.get(r.finish_reason, "stop"),
                "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                          "total_tokens": max(r.prompt_tokens, 0) + max(r.completion_tokens, 0)},
                "tier": L.TIERS[r.tier], "route": json.loads(r.route_json.decode()),
                "tool_calls": json.loads(calls) if calls else None}

    def _stream(self, msgs, n, go, keep, cid, created, router=None) -> Iterator[dict[str, Any]]:
        # The C call runs on a worker thread; its callback hands text over a queue. Closing the
        # iterator early makes the callback return false, which stops the generation.
        q: queue.Queue = queue.Queue()
        stop = threading.Event()
        pending = bytearray()

        def on_token(token, text, length, user):
            pending.extend(ctypes.string_at(text, length))
            # Whole UTF-8 characters only (the C API already holds back split ones).
            if pending:
                q.put(("text", bytes(pending).decode("utf-8", "replace")))
                pending.clear()
            return not stop.is_set()

        cb = L.TOKEN_CALLBACK(on_token)
        go.on_token = cb

        def worker():
            try:
                res = self._run(msgs, n, go, router)
                q.put(("done", res["finish_reason"]))
            except Exception as e:  # handed to the consumer
                q.put(("error", e))

        t = threading.Thread(target=worker, daemon=True)
        t.start()
        head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": self.model_path}
        try:
            yield {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
            while True:
                kind, value = q.get()
                if kind == "text":
                    yield {**head, "choices": [{"index": 0, "delta": {"content": value}, "finish_reason": None}]}
                elif kind == "done":
                    yield {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": value}]}
                    return
                else:
                    raise value
        finally:
            stop.set()
            t.join()
            del keep, cb


def _messages(messages: list[dict[str, str]]):
    arr = (L.ChatMessage * len(messages))()
    keep = []
    for i, m in enumerate(messages):
        role, content = m["role"].encode(), (m.get("content") or "").encode()
        keep += [role, content]
        arr[i].role, arr[i].content = role, content
    return arr, keep


def _schema(response_format: dict[str, Any] | None) -> bytes | None:
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        schema = response_format.get("schema") or {"type": "object"}
    elif kind == "json_schema":
        js = response_format.get("json_schema") or {}
        schema = js.get("schema", js)
    else:
        return None
    return json.dumps(schema).encode()
