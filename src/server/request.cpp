#include "server/request.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "hybrid/json_depth.h"
#include "sampling/json_schema.h"
#include "server/api_error.h"
#include "server/chat_json.h"
#include "server/grammar_constraint.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

bool present(const ojson& b, const char* k) { return b.contains(k) && !b[k].is_null(); }

std::optional<double> number(const ojson& b, const char* k, double lo, double hi) {
  if (!present(b, k)) return std::nullopt;
  if (!b[k].is_number())
    throw ApiError(400, std::string("\"") + k + "\" must be a number", k, "invalid_type");
  const double v = b[k].get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    throw ApiError(400, std::string("\"") + k + "\" must be between " + ojson(lo).dump() + " and " + ojson(hi).dump(),
                   k, "invalid_value");
  return v;
}

std::optional<int64_t> integer(const ojson& b, const char* k, int64_t lo, int64_t hi) {
  if (!present(b, k)) return std::nullopt;
  if (!b[k].is_number_integer())
    throw ApiError(400, std::string("\"") + k + "\" must be an integer", k, "invalid_type");
  const int64_t v = b[k].is_number_unsigned() && b[k].get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                        ? INT64_MAX : b[k].get<int64_t>();
  if (v < lo || v > hi)
    throw ApiError(400, std::string("\"") + k + "\" must be between " + std::to_string(lo) + " and " + std::to_string(hi),
                   k, "invalid_value");
  return v;
}

std::optional<bool> boolean(const ojson& b, const char* k) {
  if (!present(b, k)) return std::nullopt;
  if (!b[k].is_boolean()) throw ApiError(400, std::string("\"") + k + "\" must be a boolean", k, "invalid_type");
  return b[k].get<bool>();
}

std::vector<std::string> stops(const ojson& b) {
  std::vector<std::string> out;
  if (!present(b, "stop")) return out;
  const auto& s = b["stop"];
  if (s.is_string()) out.push_back(s.get<std::string>());
  else if (s.is_array() && s.size() <= 4) {
    for (const auto& x : s) {
      if (!x.is_string()) throw ApiError(400, "\"stop\" entries must be strings", "stop", "invalid_type");
      out.push_back(x.get<std::string>());
    }
  } else {
    throw ApiError(400, "\"stop\" must be a string or an array of up to 4 strings", "stop", "invalid_type");
  }
  for (const auto& x : out)
    if (x.empty()) throw ApiError(400, "\"stop\" strings must not be empty", "stop", "invalid_value");
  return out;
}

std::vector<int32_t> token_array(const ojson& a, const GenerateContext& ctx, const char* param) {
  std::vector<int32_t> ids;
  const int32_t n_vocab = ctx.engine->config().n_vocab;
  for (const auto& x : a) {
    if (!x.is_number_integer()) throw ApiError(400, std::string("\"") + param + "\" token arrays hold integers", param);
    const int64_t v = x.get<int64_t>();
    if (v < 0 || v >= n_vocab)
      throw ApiError(400, "token id " + std::to_string(v) + " is outside the vocabulary", param, "invalid_value");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

// The echoed text of a prompt given as ids: every token's text but a leading BOS the tokenizer
// would have added itself (logprobs_json counts it as 0 characters).
std::string text_of_ids(const tokenizer::Tokenizer& tok, const std::vector<int32_t>& ids) {
  const bool auto_bos = !ids.empty() && tok.add_bos_default() && ids[0] == tok.bos_id();
  return tok.decode(std::vector<int32_t>(ids.begin() + (auto_bos ? 1 : 0), ids.end()), false);
}

// OpenAI's shape (token id -> bias in [-100, 100]) is checked so a malformed map is a 400 here
// as it is there; the device does not apply it (a cloud under a routing policy gets it as sent).
void check_logit_bias(const ojson& body, const GenerateContext& ctx) {
  if (!present(body, "logit_bias")) return;
  const auto& lb = body["logit_bias"];
  if (!lb.is_object())
    throw ApiError(400, "\"logit_bias\" must be an object of token id -> bias", "logit_bias", "invalid_type");
  const int64_t n_vocab = ctx.engine->config().n_vocab;
  for (auto it = lb.begin(); it != lb.end(); ++it) {
    const std::string& k = it.key();
    int64_t id = -1;
    if (!k.empty() && k.size() <= 10 && k.find_first_not_of("0123456789") == std::string::npos) id = std::stoll(k);
    if (id < 0 || id >= n_vocab)
      throw ApiError(400, "\"logit_bias\" keys must be token ids of the vocabulary (0.." + std::to_string(n_vocab - 1) + ")",
                     "logit_bias", "invalid_value");
    const auto& v = it.value();
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < -100 || v.get<double>() > 100)
      throw ApiError(400, "\"logit_bias\" values must be numbers between -100 and 100", "logit_bias", "invalid_value");
  }
}

// A tool call's "arguments" is JSON inside a string, parsed when the conversation is rendered:
// it gets the same nesting limit as the body.
void check_tool_argument_depth(const ojson& messages) {
  if (!messages.is_array()) return;
  for (const auto& m : messages) {
    if (!m.is_object() || !m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
    for (const auto& c : m["tool_calls"]) {
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) continue;
      const auto& f = c["function"];
      if (f.contains("arguments") && f["arguments"].is_string() &&
          !hybrid::json_text_within_depth(f["arguments"].get_ref<const std::string&>()))
        throw ApiError(400, "a tool call's function.arguments nests JSON more than " +
                                std::to_string(hybrid::kMaxJsonDepth) + " levels deep", "messages", "json_too_deep");
    }
  }
}

void parse_response_format(const ojson& body, GenerateRequest& r, const GenerateContext& ctx) {
  if (!present(body, "response_format")) return;
  const auto& rf = body["response_format"];
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    throw ApiError(400, "\"response_format\" must be an object with a \"type\"", "response_format");
  const auto type = rf["type"].get<std::string>();
  std::shared_ptr<const sampling::Grammar> g;
  if (type == "text") return;
  if (type == "json_object") {
    g = sampling::json_object_grammar();
  } else if (type == "json_schema") {
    if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
      throw ApiError(400, "response_format json_schema needs a \"json_schema\" object", "response_format");
    const auto& js = rf["json_schema"];
    const ojson schema = js.contains("schema") ? js["schema"] : ojson::object();
    if (!schema.is_object() && !schema.is_boolean())
      throw ApiError(400, "response_format.json_schema.schema must be a JSON schema object", "response_format");
    try {
      g = sampling::compile_json_schema(schema);
    } catch (const InvalidArgument& e) {
      throw ApiError(400, std::string("response_format.json_schema: ") + e.what(), "response_format", "invalid_schema");
    }
  } else {
    throw ApiError(400, "response_format type must be \"text\", \"json_object\" or \"json_schema\"", "response_format");
  }
  r.response_format = type;
  r.params.constraint = grammar_constraint(g, ctx.trie);
}

// edgellm's extension "speculative": {"mode": "lookup" | "draft" | "off", "max": N}: how this
// request's decode speculates (docs/server.md); absent fields keep the server's choice.
// "cloud": the device drafts and the routing policy's cloud verifies (routes_hybrid.cpp);
// *verify_max gets the draft length (its default 8).
runtime::JobSpeculation parse_speculative(const ojson& body, const GenerateContext& ctx, int32_t* verify_max) {
  runtime::JobSpeculation out;
  bool cloud = false;
  if (!present(body, "speculative")) return out;
  const ojson& sp = body["speculative"];
  if (!sp.is_object())
    throw ApiError(400, "\"speculative\" must be an object {\"mode\": \"lookup\"|\"draft\"|\"off\", \"max\": N}",
                   "speculative", "invalid_type");
  for (auto it = sp.begin(); it != sp.end(); ++it)
    if (it.key() != "mode" && it.key() != "max")
      throw ApiError(400, "\"speculative\" has no field \"" + it.key().substr(0, 64) + "\" (only \"mode\" and \"max\")",
                     "speculative", "invalid_value");
  if (present(sp, "mode")) {
    const auto& m = sp["mode"];
    const std::string mode = m.is_string() ? m.get<std::string>() : "";
    if (mode == "off") out.mode = runtime::SpecMode::kOff;
    else if (mode == "lookup") out.mode = runtime::SpecMode::kLookup;
    else if (mode == "draft") out.mode = runtime::SpecMode::kDraft;
    else if (mode == "cloud") cloud = true;
    else
      throw ApiError(400, "\"speculative\".mode must be \"lookup\", \"draft\", \"cloud\" or \"off\"",
                     "speculative", "invalid_value");
    if (out.mode == runtime::SpecMode::kDraft && !ctx.has_draft)
      throw ApiError(400, "\"speculative\".mode \"draft\" needs a draft model: start the server with --draft MODEL",
                     "speculative", "invalid_value");
  }
  try {
    if (auto max = integer(sp, "max", cloud ? 1 : 0, runtime::kMaxDraftTokens)) out.max = static_cast<int32_t>(*max);
  } catch (const ApiError& e) {
    throw ApiError(e.status, "\"speculative\": " + e.message, "speculative", e.code);
  }
  if (cloud) {
    *verify_max = out.max > 0 ? out.max : 8;
    out = {};
  }
  return out;
}

}  // namespace

ojson parse_body(const std::string& text) {
  // Before parsing: nlohmann copies and compares values recursively, and an ordered object
  // copies an earlier deep value when a later key arrives, so depth must be bounded up front.
  if (!hybrid::json_text_within_depth(text))
    throw ApiError(400, "the request body nests JSON more than " + std::to_string(hybrid::kMaxJsonDepth) +
                            " levels deep", "", "json_too_deep");
  ojson j = ojson::parse(text, nullptr, false);
  if (j.is_discarded())
    throw ApiError(400, "the request body is not valid JSON", "", "invalid_json");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
  return j;
}

void check_model(const ojson& body, const std::string& model_id, const std::vector<std::string>& aliases) {
  if (!present(body, "model")) return;
  if (!body["model"].is_string()) throw ApiError(400, "\"model\" must be a string", "model", "invalid_type");
  const auto m = body["model"].get<std::string>();
  if (m != model_id && std::find(aliases.begin(), aliases.end(), m) == aliases.end()) {
    // Quoted whole (a NUL too: ApiError keeps it) up to a length worth reading back.
    constexpr size_t kQuote = 256;
    const std::string shown = m.size() > kQuote ? m.substr(0, kQuote) + "..." : m;
    throw ApiError(404, "The model '" + shown + "' does not exist; this server serves '" + model_id + "'", "model",
                   "model_not_found");
  }
}

// The adapters a request runs with: the loaded ones at their default scales, or, when the body has
// "lora": [{"id": I, "scale": S}, ...] (llama-server's field; or {"name": N, ...}, N the adapter's
// general.name, e.g. a fine-tuning job's fine_tuned_model), exactly the adapters named, at
// those scales (an adapter not named is off for this request). Scale-0 entries are dropped, so
// sets that compute the same thing compare equal (prefix reuse across them is exact).
static model::LoraSet parse_lora(const ojson& body, const GenerateContext& ctx) {
  const model::LoraSet none;
  const model::LoraSet& loaded = ctx.adapters ? *ctx.adapters : none;
  std::shared_lock<std::shared_mutex> lock;
  if (ctx.adapters_mu) lock = std::shared_lock<std::shared_mutex>(*ctx.adapters_mu);
  model::LoraSet out;
  if (!present(body, "lora")) {
    for (const auto& e : loaded.entries)
      if (e.scale != 0.0f) out.entries.push_back(e);
    return out;
  }
  const ojson& list = body["lora"];
  if (!list.is_array())
    throw ApiError(400, "\"lora\" must be an array of {\"id\", \"scale\"} objects", "lora", "invalid_type");
  if (!list.empty() && loaded.empty())
    throw ApiError(400, "no LoRA adapters are loaded (start the server with --lora FILE)", "lora", "invalid_value");
  std::vector<bool> seen(loaded.entries.size(), false);
  for (size_t i = 0; i < list.size(); ++i) try {
    const ojson& item = list[i];
    if (!item.is_object())
      throw ApiError(400, "each \"lora\" item must be an object {\"id\", \"scale\"}", "lora", "invalid_type");
    std::optional<int64_t> id;
    if (!present(item, "name")) {
      id = integer(item, "id", 0, static_cast<int64_t>(loaded.entries.size()) - 1);
    } else {
      if (!item["name"].is_string())
        throw ApiError(400, "\"name\" must be a string", "lora", "invalid_type");
      const std::string name = item["name"].get<std::string>();
      for (size_t k = 0; k < loaded.entries.size() && !id; ++k)
        if (loaded.entries[k].adapter->info().name == name) id = static_cast<int64_t>(k);
      if (!id) throw ApiError(404, "no LoRA adapter is named '" + name + "'", "lora", "not_found");
    }
    if (!id) throw ApiError(400, "a \"lora\" item lacks its \"id\"", "lora", "invalid_value");
    if (seen[static_cast<size_t>(*id)])
      throw ApiError(400, "LoRA adapter " + std::to_string(*id) + " is named twice", "lora", "invalid_value");
    seen[static_cast<size_t>(*id)] = true;
    const float scale = static_cast<float>(number(item, "scale", -100, 100).value_or(1.0));
    if (scale != 0.0f) out.entries.push_back({loaded.entries[static_cast<size_t>(*id)].adapter, scale});
  } catch (const ApiError& e) {
    // Name the list and the item, not the inner key alone.
    throw ApiError(e.status, "\"lora\"[" + std::to_string(i) + "]: " + e.message, "lora", e.code);
  }
  return out;
}

GenerateRequest parse_generate(const ojson& body, bool chat, const GenerateContext& ctx, bool check_context) {
  check_model(body, ctx.model_id, ctx.model_aliases);
  GenerateRequest r;
  r.chat = chat;
  const auto& tok = ctx.engine->tokenizer();

  // Sampling. Defaults follow OpenAI (temperature 1, top_p 1).
  auto& sp = r.params.sampling;
  sp.temperature = static_cast<float>(number(body, "temperature", 0, 2).value_or(1.0));
  sp.top_p = static_cast<float>(number(body, "top_p", 0, 1).value_or(1.0));
  if (sp.top_p <= 0.0f) {
    // The smallest nucleus is the top token: greedy. The sampler reads top_p 0 as "off", so a
    // client asking for determinism with top_p 0 (or 1e-50, 0 as a float) would get full sampling.
    sp.top_p = 1.0f;
    sp.temperature = 0.0f;
  }
  sp.top_k = static_cast<int32_t>(integer(body, "top_k", 0, 1 << 30).value_or(0));
  sp.min_p = static_cast<float>(number(body, "min_p", 0, 1).value_or(0.0));
  sp.presence_penalty = static_cast<float>(number(body, "presence_penalty", -2, 2).value_or(0.0));
  sp.frequency_penalty = static_cast<float>(number(body, "frequency_penalty", -2, 2).value_or(0.0));
  // Divides positive logits: the sampler needs it > 0 as a float, and above ~1e-38 the quotient
  // leaves float range (1e-50 passes a double check and becomes 0 in the sampler).
  sp.repeat_penalty = static_cast<float>(number(body, "repeat_penalty", 0.01, 10).value_or(1.0));
  if (auto seed = integer(body, "seed", INT64_MIN, INT64_MAX)) sp.seed = static_cast<uint64_t>(*seed);
  else sp.seed = std::random_device{}();
  const auto n = integer(body, "n", 1, 1 << 20).value_or(1);
  if (n > ctx.max_n)
    throw ApiError(400, "\"n\" above " + std::to_string(ctx.max_n) + " is not supported by this server", "n",
                   "unsupported_value");
  r.n = static_cast<int32_t>(n);
  if (!chat) r.echo = boolean(body, "echo").value_or(false);
  // max_tokens 0 asks for the prompt's log-probabilities alone (echo), as vLLM allows.
  std::optional<int64_t> max_tokens = integer(body, "max_tokens", r.echo ? 0 : 1, INT32_MAX);
  if (chat) {
    if (auto mct = integer(body, "max_completion_tokens", 1, INT32_MAX)) max_tokens = mct;
  } else if (!max_tokens) {
    max_tokens = 16;  // the legacy completions default
  }
  r.params.stop = stops(body);
  check_logit_bias(body, ctx);
  r.params.ignore_eos = boolean(body, "ignore_eos").value_or(false);  // llama.cpp extension
  r.lora = parse_lora(body, ctx);
  r.stream = boolean(body, "stream").value_or(false);
  if (present(body, "stream_options")) {
    if (!r.stream) throw ApiError(400, "\"stream_options\" is only allowed when \"stream\" is true", "stream_options");
    if (!body["stream_options"].is_object())
      throw ApiError(400, "\"stream_options\" must be an object", "stream_options", "invalid_type");
    r.include_usage = boolean(body["stream_options"], "include_usage").value_or(false);
  }
  if (chat) {
    const bool lp = boolean(body, "logprobs").value_or(false);
    const auto top = integer(body, "top_logprobs", 0, sampling::kMaxTopLogprobs);
    if (top && !lp)
      throw ApiError(400, "\"top_logprobs\" needs \"logprobs\": true", "top_logprobs", "invalid_value");
    if (lp) r.logprobs = static_cast<int32_t>(top.value_or(0));
  } else if (auto lp = integer(body, "logprobs", 0, sampling::kMaxTopLogprobs)) {
    r.logprobs = static_cast<int32_t>(*lp);
  }
  r.params.logprobs = r.logprobs;
  r.tokens_as_ids = boolean(body, "return_tokens_as_token_ids").value_or(false);
  r.speculation = parse_speculative(body, ctx, &r.verify_max);
  if (!chat && present(body, "suffix"))
    throw ApiError(400, "\"suffix\" is not supported by this server", "suffix", "unsupported_parameter");

  const char* prompt_param = chat ? "messages" : "prompt";
  if (chat) {
    if (!present(body, "messages")) throw ApiError(400, "\"messages\" is required", "messages");
    check_tool_argument_depth(body["messages"]);
    r.tools = parse_tool_config(body);
    std::vector<chat::Message> msgs =
        messages_from_json(prepare_messages(body["messages"], r.tools, ctx.template_renders_tools));
    const chat::Value tools_for_template =
        ctx.template_renders_tools && r.tools.active() ? value_from_json(r.tools.tools_json) : chat::Value();
    // Control tokens count only in the template's own text, never in what a client wrote.
    auto render = [&] {
      try {
        r.prompt = ctx.engine->tokenize_chat(msgs, true, tools_for_template);
      } catch (const InvalidArgument& e) {
        throw ApiError(400, e.what(), "messages", "invalid_value");
      } catch (const std::exception& e) {
        throw ApiError(400, std::string("the model's chat template rejected the conversation: ") + e.what(),
                       "messages", "template_error");
      }
    };
    render();
    if (ctx.context_shift && check_context) {
      // Context shift, as `chat` does: while the prompt and room for the answer exceed a slot, the
      // oldest turn (a user message and the replies after it) goes; leading system messages and the
      // last message stay. The scheduler then moves the kept turns down in the slot's cache.
      const int64_t room = std::min<int64_t>(max_tokens.value_or(ctx.n_ctx / 4), ctx.n_ctx / 2);
      size_t first = 0;
      while (first < msgs.size() && msgs[first].role == "system") ++first;
      while (static_cast<int64_t>(r.prompt.size()) + room > ctx.n_ctx && msgs.size() > first + 1) {
        size_t end = first + 1;
        while (end < msgs.size() - 1 && msgs[end].role != "user") ++end;
        msgs.erase(msgs.begin() + static_cast<std::ptrdiff_t>(first), msgs.begin() + static_cast<std::ptrdiff_t>(end));
        r.messages_dropped += static_cast<int32_t>(end - first);
        render();
      }
    }
    for (const auto& s : ctx.engine->formatter().stop_strings()) r.params.stop.push_back(s);
  } else {
    if (!present(body, "prompt")) throw ApiError(400, "\"prompt\" is required", "prompt");
    const auto& p = body["prompt"];
    if (p.is_string()) {
      r.prompt_text = p.get<std::string>();
      r.prompt = tok.encode(r.prompt_text, tok.add_bos_default(), true);
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt_text = p[0].get<std::string>();
      r.prompt = tok.encode(r.prompt_text, tok.add_bos_default(), true);
    } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
      r.prompt = token_array(p, ctx, "prompt");
      r.prompt_text = text_of_ids(tok, r.prompt);
    } else if (p.is_array() && p.size() == 1 && p[0].is_array()) {
      r.prompt = token_array(p[0], ctx, "prompt");
      r.prompt_text = text_of_ids(tok, r.prompt);
    } else {
      throw ApiError(400, "\"prompt\" must be a string or an array of token ids (one prompt per request)", "prompt",
                     "invalid_type");
    }
  }
  if (r.prompt.empty()) throw ApiError(400, std::string("\"") + prompt_param + "\" is empty", prompt_param);
  if (check_context && static_cast<int64_t>(r.prompt.size()) >= ctx.n_ctx)
    throw ApiError(400, "This model's context holds " + std::to_string(ctx.n_ctx) + " tokens, but the " +
                            (chat ? "messages take " : "prompt takes ") + std::to_string(r.prompt.size()) +
                            " tokens. Shorten them or restart the server with a larger -c.",
                   prompt_param, "context_length_exceeded");
  r.params.max_tokens = max_tokens ? static_cast<int32_t>(*max_tokens) : -1;

  // Constrained output: a forced tool call wins over response_format; auto mode arms a
  // grammar that takes over once the model opens a call.
  parse_response_format(body, r, ctx);
  if (chat && r.tools.active()) {
    try {
      if (r.tools.mode == ToolMode::kRequired || r.tools.mode == ToolMode::kNamed) {
        std::vector<ToolSpec> allowed;
        for (const auto& t : r.tools.tools)
          if (r.tools.mode == ToolMode::kRequired || t.name == r.tools.forced) allowed.push_back(t);
        r.params.constraint = grammar_constraint(tool_call_grammar(allowed, false), ctx.trie);
        r.parse_tools = true;
      } else if (r.response_format == "text") {
        r.params.constraint =
            std::make_shared<LazyGrammarConstraint>(kToolCallOpen, tool_call_grammar(r.tools.tools, true), ctx.trie);
        r.parse_tools = true;
      }
    } catch (const InvalidArgument& e) {
      throw ApiError(400, std::string("tools: a parameters schema cannot be used: ") + e.what(), "tools",
                     "invalid_schema");
    }
  }
  return r;
}

std::vector<std::vector<int32_t>> parse_embedding_input(const ojson& body, const GenerateContext& ctx) {
  check_model(body, ctx.model_id, ctx.model_aliases);
  if (!present(body, "input")) throw ApiError(400, "\"input\" is required", "input");
  if (present(body, "encoding_format")) {
    const auto& f = body["encoding_format"];
    if (!f.is_string() || (f != "float" && f != "base64"))
      throw ApiError(400, "\"encoding_format\" must be \"float\" or \"base64\"", "encoding_format");
  }
  if (present(body, "dimensions"))
    throw ApiError(400, "\"dimensions\" is not supported (embeddings have the model's width)", "dimensions",
                   "unsupported_parameter");
  const auto& tok = ctx.engine->tokenizer();
  const auto& in = body["input"];
  std::vector<std::vector<int32_t>> out;
  auto add_text = [&](const std::string& s) { out.push_back(tok.encode(s, tok.add_bos_default(), false)); };
  if (in.is_string()) add_text(in.get<std::string>());
  else if (in.is_array() && !in.empty() && in[0].is_number_integer()) out.push_back(token_array(in, ctx, "input"));
  else if (in.is_array() && !in.empty()) {
    for (const auto& x : in) {
      if (x.is_string()) add_text(x.get<std::string>());
      else if (x.is_array()) out.push_back(token_array(x, ctx, "input"));
      else throw ApiError(400, "\"input\" items must be strings or token arrays", "input", "invalid_type");
    }
  } else {
    throw ApiError(400, "\"input\" must be a string, an array of strings or token arrays", "input", "invalid_type");
  }
  if (out.size() > 256) throw ApiError(400, "at most 256 inputs per request", "input");
  for (const auto& ids : out) {
    if (ids.empty()) throw ApiError(400, "\"input\" must not contain empty strings", "input", "invalid_value");
    if (static_cast<int64_t>(ids.size()) > ctx.n_ctx)
      throw ApiError(400, "an input has " + std::to_string(ids.size()) + " tokens; the context holds " +
                              std::to_string(ctx.n_ctx), "input", "context_length_exceeded");
  }
  return out;
}

}  // namespace edgellm::server
