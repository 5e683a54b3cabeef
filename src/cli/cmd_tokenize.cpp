// edgellm tokenize: text to token ids with a model's (or a vocab-only file's) tokenizer.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct TokenizeArgs {
  std::string model, prompt, file;
  bool jsonl = false, pieces = false, bos = false, special = false;
};

void tokenize(const TokenizeArgs& a) {
  auto file = io::GgufFile::open(resolve_model(a.model));
  auto tok = tokenizer::Tokenizer::from_gguf(*file);
  if (a.jsonl) {
    // One JSON string per input line -> one JSON array of ids per output line.
    std::string line;
    while (std::getline(std::cin, line)) {
      nlohmann::json s;
      try {
        s = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw InvalidArgument(std::string("--jsonl input line is not JSON: ") + e.what());
      }
      if (!s.is_string()) throw InvalidArgument("--jsonl input lines must be JSON strings");
      const nlohmann::json ids = tok->encode(s.get<std::string>(), a.bos, a.special);
      std::cout << ids.dump() << '\n';
    }
    return;
  }
  const std::string text = a.file.empty() ? a.prompt : read_file(a.file);
  const auto ids = tok->encode(text, a.bos, a.special);
  if (a.pieces) {
    for (int32_t id : ids) std::cout << id << '\t' << nlohmann::json(tok->token_text(id)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << '\n';
}

Registrar reg("tokenize", "Print the token ids of a text", [](CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  app.add_option("-m,--model", a->model, "GGUF model or vocabulary-only file");
  app.add_option("-p,--prompt", a->prompt, "Text to tokenize");
  app.add_option("-f,--file", a->file, "Read the text from a file");
  app.add_flag("--jsonl", a->jsonl, "Read JSON strings line by line from stdin, print JSON id arrays");
  app.add_flag("--show-pieces", a->pieces, "Print each id with its vocabulary piece");
  app.add_flag("--bos", a->bos, "Prepend the BOS token");
  app.add_flag("--special", a->special, "Parse special tokens written in the text");
  app.callback([a] { tokenize(*a); });
});

}  // namespace
}  // namespace edgellm::cli
