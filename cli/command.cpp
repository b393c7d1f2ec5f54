// The global options and the helpers every object shares.
#include "cli/command.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "loader/datapath/session.hpp"

namespace weft::cli {

namespace {

std::string host_name() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

} // namespace

Layout layout_of(const Globals& g) {
  Layout layout;
  layout.bpffs = g.bpffs;
  layout.state_dir = g.state_dir;
  layout.node = g.node.empty() ? host_name() : g.node;
  return layout;
}

std::string read_input(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  text << in.rdbuf();
  return text.str();
}

CLI::App* Command::object(const std::string& name, const std::string& help) const {
  CLI::App* object = app.add_subcommand(name, help);
  object->require_subcommand(1);
  return object;
}

CLI::App* Command::verb(CLI::App* object, const std::string& name, const std::string& help,
                        Action run) const {
  CLI::App* verb = object->add_subcommand(name, help);
  verb->callback([&chosen = action, run = std::move(run)] { chosen = run; });
  return verb;
}

CLI::App* Command::list(CLI::App* object, const std::string& help, Inspection rows,
                        std::vector<Column> columns) const {
  CLI::App* list = verb(object, "list", help,
                        [&g = globals, rows = std::move(rows), columns = std::move(columns)] {
                          Session session(layout_of(g));
                          print_rows(rows(session), columns, g.format);
                        });
  list->alias("show");
  return list;
}

} // namespace weft::cli
