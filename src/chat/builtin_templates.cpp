#include "chat/builtin_templates.h"

namespace edgellm::chat {
namespace {

// Gemma's turn format: <start_of_turn>user|model ... <end_of_turn>; a system message has no
// role of its own and is prepended to the first user turn.
constexpr const char* kGemma = R"JINJA({{ bos_token }}
{%- if messages and messages[0]['role'] == 'system' -%}
  {%- set prefix = messages[0]['content'] + '\n\n' -%}
  {%- set turns = messages[1:] -%}
{%- else -%}
  {%- set prefix = '' -%}
  {%- set turns = messages -%}
{%- endif -%}
{%- for m in turns -%}
  {%- set role = 'model' if m['role'] == 'assistant' else m['role'] -%}
  {{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '') + (m['content'] | trim) + '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%})JINJA";

}  // namespace

std::optional<std::string> builtin_template(const std::string& arch) {
  if (arch == "gemma" || arch == "gemma2" || arch == "gemma3") return std::string(kGemma);
  return std::nullopt;
}

}  // namespace edgellm::chat
