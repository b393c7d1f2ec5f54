// The global options and the helpers every object shares.
#include "cli/command.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

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

} // namespace weft::cli
