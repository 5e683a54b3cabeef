#pragma once
// Each subcommand lives in its own cmd_*.cpp and registers itself with a static Registrar, so
// adding a command never touches main.cpp.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace edgellm::cli {

struct Command {
  std::string name;
  std::string description;
  // Adds options to `sub` and sets its callback. The callback throws edgellm::Error on
  // failure; main prints "error: <message>" and exits 1.
  std::function<void(CLI::App& sub)> setup;
};

std::vector<Command>& command_registry();

struct Registrar {
  Registrar(std::string name, std::string description, std::function<void(CLI::App&)> setup) {
    command_registry().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace edgellm::cli
