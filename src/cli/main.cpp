// edgellm: the command-line front end. Subcommands register themselves (command.h).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/command.h"
#include "util/error.h"

namespace edgellm::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> registry;
  return registry;
}
}  // namespace edgellm::cli

int main(int argc, char** argv) {
  using namespace edgellm::cli;
  CLI::App app{"edgellm: on-device LLM inference"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "edgellm 0.1.0");
  auto& commands = command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  for (auto& cmd : commands) cmd.setup(*app.add_subcommand(cmd.name, cmd.description));
  // llama.cpp's single-dash multi-letter flags, which CLI11 cannot declare, as their long names.
  std::vector<std::string> args(argv + 1, argv + argc);
  for (auto& s : args) {
    if (s == "-ctk") s = "--cache-type-k";
    else if (s == "-ctv") s = "--cache-type-v";
  }
  std::reverse(args.begin(), args.end());
  if (argc > 0) app.name(argv[0]);  // as parse(argc, argv) would name it in the usage line  // CLI11 takes the vector last argument first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const edgellm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
