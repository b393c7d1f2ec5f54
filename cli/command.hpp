// What every `weft` object (cli/objects/*.cpp, one file each, as bpftool's
// src/*.c) shares: the global options, the node they name, and how an object
// registers its commands with the command line.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/output.hpp"
#include "loader/model/layout.hpp"

namespace weft {
class Session;
} // namespace weft

namespace weft::cli {

struct Globals {
  Format format;
  std::string node;
  std::string netns;
  std::string bpffs = "/sys/fs/bpf";
  std::string state_dir = "/run/weft";
};

// The node the global options name (the host name by default).
Layout layout_of(const Globals& g);
// The text of FILE, or of standard input for "-".
std::string read_input(const std::string& path);

// The command the command line chose; main runs it once parsing is done.
using Action = std::function<void()>;
// What an inspection command prints of a node: its rows.
using Inspection = std::function<nlohmann::json(Session&)>;

// Where the values of an object's options live until its command has run.
class OptionStore {
public:
  template <class T> T& add(T initial = T{}) {
    auto value = std::make_shared<T>(std::move(initial));
    T& ref = *value;
    values_.push_back(std::move(value));
    return ref;
  }

private:
  std::vector<std::shared_ptr<void>> values_;
};

struct Command {
  CLI::App& app;
  const Globals& globals;
  Action& action;
  OptionStore& store;

  // `weft NAME VERB ...`: an object, which wants one of its verbs.
  CLI::App* object(const std::string& name, const std::string& help) const;
  // A verb of `object`: chosen, `run` is what the command does.
  CLI::App* verb(CLI::App* object, const std::string& name, const std::string& help,
                 Action run) const;
  // `list`, also spelled `show`: the rows an inspection of the node gives, as
  // a table (JSON with -j).
  CLI::App* list(CLI::App* object, const std::string& help, Inspection rows,
                 std::vector<Column> columns) const;
};

// One per object: adds `weft OBJECT ...` and sets `action` when chosen.
void register_node(Command& cmd);
void register_apply(Command& cmd);
void register_net(Command& cmd);
void register_port(Command& cmd);
void register_fdb(Command& cmd);
void register_vtep(Command& cmd);
void register_map(Command& cmd);
void register_prog(Command& cmd);
void register_stats(Command& cmd);
void register_sg(Command& cmd);
void register_ct(Command& cmd);
void register_lab(Command& cmd);
void register_agent(Command& cmd);

} // namespace weft::cli
