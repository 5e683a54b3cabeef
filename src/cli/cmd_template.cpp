// edgellm template: render a chat template (from a GGUF or a .jinja file) over a conversation,
// printing the prompt exactly as the model would see it.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "chat/chat.h"
#include "cli/command.h"
#include "cli/common.h"
#include "io/gguf.h"
#include "server/chat_json.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct TemplateArgs {
  std::string model, template_file, messages_file, tools_file, bos, eos;
  bool add_generation_prompt = false;
  bool bos_set = false, eos_set = false;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::ordered_json read_json(const std::string& path) {
  try {
    return nlohmann::ordered_json::parse(slurp(path));
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("'" + path + "' is not valid JSON: " + e.what());
  }
}

// Token text for tokenizer.ggml.<which>_token_id, or "" when absent.
std::string special_token(const io::GgufFile& f, const char* which) {
  auto id = f.get_int(std::string("tokenizer.ggml.") + which + "_token_id");
  const auto* tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!id || !tokens || *id < 0 || static_cast<size_t>(*id) >= tokens->size()) return "";
  return (*tokens)[*id];
}

void run(const TemplateArgs& a) {
  if (a.model.empty() == a.template_file.empty())
    throw InvalidArgument("give exactly one of -m/--model GGUF or --template FILE.jinja");
  nlohmann::ordered_json messages = read_json(a.messages_file);
  nlohmann::ordered_json tools = nullptr;
  if (messages.is_object()) {  // {"messages": [...], "tools": [...]} is accepted too
    if (messages.contains("tools")) tools = messages["tools"];
    messages = nlohmann::ordered_json(messages["messages"]);
  }
  if (!a.tools_file.empty()) tools = read_json(a.tools_file);
  std::unique_ptr<chat::ChatFormatter> fmt;
  if (!a.model.empty()) {
    auto f = io::GgufFile::open(resolve_model(a.model));
    std::string bos = a.bos_set ? a.bos : special_token(*f, "bos");
    std::string eos = a.eos_set ? a.eos : special_token(*f, "eos");
    fmt = chat::make_formatter(*f, bos, eos);
  } else {
    fmt = chat::make_jinja_formatter(slurp(a.template_file), a.bos, a.eos);
  }
  std::string out = fmt->format(server::messages_from_json(messages), a.add_generation_prompt,
                                server::value_from_json(tools));
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

const Registrar reg("template", "Render a chat template over a conversation (JSON messages)",
                    [](CLI::App& sub) {
                      auto a = std::make_shared<TemplateArgs>();
                      sub.add_option("-m,--model", a->model, "Model (short name or GGUF file) whose tokenizer.chat_template to use");
                      sub.add_option("--template", a->template_file, "Jinja template file");
                      sub.add_option("--messages", a->messages_file, "JSON file: array of messages")->required();
                      sub.add_option("--tools", a->tools_file, "JSON file: array of tool definitions");
                      sub.add_flag("--add-generation-prompt", a->add_generation_prompt,
                                   "Append the assistant turn opener");
                      auto* bos = sub.add_option("--bos", a->bos, "BOS token text (default: from the GGUF)");
                      auto* eos = sub.add_option("--eos", a->eos, "EOS token text (default: from the GGUF)");
                      sub.callback([a, bos, eos] {
                        a->bos_set = bos->count() > 0;
                        a->eos_set = eos->count() > 0;
                        run(*a);
                      });
                    });

}  // namespace
}  // namespace edgellm::cli
