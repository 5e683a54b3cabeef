#!/usr/bin/env python3
"""Writes the generated seeds of the parser fuzz targets: inputs too big to commit, built from
issue 17's reproducers.

    seed_gen.py OUT_DIR

OUT_DIR/corpus/<target>/      inputs the parsers handle today (fuzzed in CI, with the committed
                              fuzz/corpus/<target>/)
OUT_DIR/regressions/<target>/ known defects not fixed yet: scripts/run-fuzz --regressions runs
                              them (with fuzz/regressions/<target>/); move an entry to CORPUS
                              once its fix has landed.
"""
import json
import os
import sys

MSG = [{"role": "user", "content": "hi"}]


def nested(depth, leaf, wrap):
    v = leaf
    for _ in range(depth):
        v = wrap(v)
    return v


def deep_array_text(depth):
    # Built as text: json.dumps itself recurses.
    return "[" * depth + "1" + "]" * depth


def deep_schema_text(depth, key):
    # {"key": {"key": ... {"type": "string"} ...}} with key "items" or {"anyOf": [ ... ]}.
    if key == "anyOf":
        return '{"anyOf": [' * depth + '{"type": "string"}' + "]}" * depth
    return ('{"type": "array", "%s": ' % key) * depth + '{"type": "string"}' + "}" * depth


def chat_with_schema(schema_text):
    return ('{"messages": %s, "max_tokens": 8, "response_format": {"type": "json_schema", '
            '"json_schema": {"name": "x", "schema": %s}}}' % (json.dumps(MSG), schema_text))


def enum_text(n):
    return json.dumps({"enum": ["s%d" % i for i in range(n)]})


CORPUS = {
    # Moderately deep nesting that stays under any sane depth limit: must keep working.
    "request_fuzz": {
        "deep_body_100.json": '{"x": %s, "y": 1, "messages": [{"role": "user", "content": "hi"}]}' % deep_array_text(100),
        "schema_items_50.json": chat_with_schema(deep_schema_text(50, "items")),
        "enum_1000.json": chat_with_schema(enum_text(1000)),
    },
    "schema_fuzz": {
        "items_50.json": deep_schema_text(50, "items"),
        "anyof_50.json": deep_schema_text(50, "anyOf"),
        "enum_1000.json": enum_text(1000),
    },
    "sse_fuzz": {
        "deep_data_1000": "data: %s\n\ndata: [DONE]\n\n" % deep_array_text(1000),
    },
    "tokenizer_fuzz": {
        "long_digits": "\x00" + "9" * 5000,
        "long_spaces_spm": "\x01" + " " * 3000 + "x",
        "long_word": "\x00" + "ab" * 4000,
    },
    "pii_fuzz": {
        "many_digits": " ".join("1381234567%d" % (i % 10) for i in range(500)),
        "long_email_local": "a" * 8000 + "@example.com",
    },
}

# Issue 17's reproducers, fixed: fuzzed in CI from now on so they stay fixed.
ISSUE17 = {
    "request_fuzz": {
        # Defect 2: deep nesting overflows the stack (body copy; response_format copy).
        "deep_body_150000.json": '{"x": %s, "y": 1}' % deep_array_text(150000),
        "anyof_60000.json": chat_with_schema(deep_schema_text(60000, "anyOf")),
        # Defect 4: quadratic memory in schema depth; a 100k-string enum takes seconds, then a 500.
        "items_10000.json": chat_with_schema(deep_schema_text(10000, "items")),
        "enum_100000.json": chat_with_schema(enum_text(100000)),
    },
    "schema_fuzz": {
        "anyof_60000.json": deep_schema_text(60000, "anyOf"),
        "items_10000.json": deep_schema_text(10000, "items"),
        "items_20000.json": deep_schema_text(20000, "items"),
        "enum_100000.json": enum_text(100000),
    },
    "tool_calls_fuzz": {
        "tool_params_items_10000.json": '[{"type": "function", "function": {"name": "f", "parameters": '
                                        '{"type": "object", "properties": {"a": %s}}}}]' % deep_schema_text(10000, "items"),
    },
}
for _target, _files in ISSUE17.items():
    CORPUS.setdefault(_target, {}).update(_files)

# Known-defect reproducers that are not fixed yet (run by `scripts/run-fuzz --regressions`, not
# fuzzed in CI). Empty: issue 17's are fixed and live in CORPUS (the "issue 17" entries).
REGRESSIONS = {}


def write(root, table):
    for target, files in table.items():
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(text.encode("utf-8"))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    write(os.path.join(out, "corpus"), CORPUS)
    write(os.path.join(out, "regressions"), REGRESSIONS)


if __name__ == "__main__":
    main()
