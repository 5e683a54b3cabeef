"""Conversations for the chat-template conformance test (tests/python/test_chat_templates.py).

Each case: name, messages (OpenAI shape), tools (or None), add_generation_prompt.
Tool-call arguments appear both as dicts (the HF convention) and as JSON strings (OpenAI's).
"""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                         "description": "Temperature unit"},
            },
            "required": ["location"],
        },
    },
}

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_docs",
        "description": "Search the documentation <index> & return matches (café ☕).",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Free-text query"},
                "limit": {"type": "integer", "description": "Max results"},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Filter tags"},
                "score": {"type": "number", "description": "Minimum score, 0.5 by default"},
            },
            "required": ["query", "tags"],
        },
    },
}


def _call(name, args, call_id="call12345", as_string=False):
    import json
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args) if as_string else args}}


CONVERSATIONS = [
    {"name": "plain_user", "messages": [{"role": "user", "content": "Hello!"}],
     "tools": None, "add_generation_prompt": True},
    {"name": "plain_no_gen_prompt",
     "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, how can I help?"}],
     "tools": None, "add_generation_prompt": False},
    {"name": "with_system",
     "messages": [{"role": "system", "content": "You are a terse assistant."},
                  {"role": "user", "content": "What is 2+2?"}],
     "tools": None, "add_generation_prompt": True},
    {"name": "multi_turn",
     "messages": [{"role": "system", "content": "Be kind."},
                  {"role": "user", "content": "Tell me a joke."},
                  {"role": "assistant", "content": "Why did the chicken cross the road?"},
                  {"role": "user", "content": "Why?"},
                  {"role": "assistant", "content": "To get to the other side."},
                  {"role": "user", "content": "Another one, please."}],
     "tools": None, "add_generation_prompt": True},
    {"name": "multi_turn_ends_assistant",
     "messages": [{"role": "user", "content": "  padded question  \n"},
                  {"role": "assistant", "content": "\nA padded answer.\n"},
                  {"role": "user", "content": "ok"},
                  {"role": "assistant", "content": "Bye"}],
     "tools": None, "add_generation_prompt": False},
    {"name": "unicode_and_markup",
     "messages": [{"role": "system", "content": "Réponds en français. 中文 ok. 😀"},
                  {"role": "user", "content": "Quote: \"it's\" <b>bold</b> & 'single'\n\ttab \\ backslash"}],
     "tools": None, "add_generation_prompt": True},
    {"name": "tools_offered",
     "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
     "tools": [WEATHER_TOOL, SEARCH_TOOL], "add_generation_prompt": True},
    {"name": "tools_with_system",
     "messages": [{"role": "system", "content": "You can call tools."},
                  {"role": "user", "content": "Find docs about tokenizers."}],
     "tools": [SEARCH_TOOL], "add_generation_prompt": True},
    {"name": "tool_call_dict_args",
     "messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None,
                   "tool_calls": [_call("get_weather", {"location": "Paris", "unit": "celsius"})]}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": False},
    {"name": "tool_call_string_args",
     "messages": [{"role": "user", "content": "Weather in Oslo?"},
                  {"role": "assistant", "content": None,
                   "tool_calls": [_call("get_weather", {"location": "Oslo"}, "callABCDE", True)]}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": False},
    {"name": "tool_result_round_trip",
     "messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None,
                   "tool_calls": [_call("get_weather", {"location": "Paris"}, "call12345", True)]},
                  {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
                   "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"},
                  {"role": "assistant", "content": "It is 21.5 °C and clear in Paris."},
                  {"role": "user", "content": "Thanks! And tomorrow?"}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    {"name": "two_tool_calls_and_results",
     "messages": [{"role": "user", "content": "Weather in Paris and Rome?"},
                  {"role": "assistant", "content": "Checking both.",
                   "tool_calls": [_call("get_weather", {"location": "Paris"}, "call00001"),
                                  _call("get_weather", {"location": "Rome", "unit": "celsius"}, "call00002")]},
                  {"role": "tool", "tool_call_id": "call00001", "name": "get_weather", "content": "18"},
                  {"role": "tool", "tool_call_id": "call00002", "name": "get_weather", "content": "25"}],
     "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    {"name": "roles_not_alternating",
     "messages": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
     "tools": None, "add_generation_prompt": True},
    {"name": "assistant_first",
     "messages": [{"role": "assistant", "content": "I speak first."}, {"role": "user", "content": "ok"}],
     "tools": None, "add_generation_prompt": True},
    {"name": "empty_conversation", "messages": [], "tools": None, "add_generation_prompt": True},
]
