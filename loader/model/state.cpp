// Parsing and validating the desired state (DESIGN.md §3.1). Every check that
// Neutron's API makes on these fields is made on the whole document, so that a
// refused document lists all its problems and changes nothing. This file holds
// the State's own lookups and errors, and the order in which the parser reads
// the document's kinds; each kind's parser is in its own parse_<kind>.cpp.
#include "loader/model/state.hpp"

#include <algorithm>
#include <functional>
#include <utility>

#include <nlohmann/json.hpp>

#include "loader/model/parser.hpp"

namespace weft {

std::string_view to_string(NetworkType type) {
  switch (type) {
  case NetworkType::Vxlan:
    return "vxlan";
  case NetworkType::Vlan:
    return "vlan";
  case NetworkType::Flat:
    return "flat";
  }
  return "unknown";
}

std::string Port::device_name() const {
  return "tap" + id.substr(0, 11);
}

// --- lookups -----------------------------------------------------------------

namespace {

template <class T, class Key>
const T* find_by(const std::vector<T>& items, std::string_view wanted, Key key) {
  auto it = std::find_if(items.begin(), items.end(),
                         [&](const T& item) { return std::invoke(key, item) == wanted; });
  return it == items.end() ? nullptr : &*it;
}

} // namespace

const Network* State::find_network(std::string_view id) const {
  return find_by(networks, id, &Network::id);
}
const Subnet* State::find_subnet(std::string_view id) const {
  return find_by(subnets, id, &Subnet::id);
}
const Port* State::find_port(std::string_view id) const {
  return find_by(ports, id, &Port::id);
}
const SecurityGroup* State::find_group(std::string_view id) const {
  return find_by(security_groups, id, &SecurityGroup::id);
}
const Node* State::find_node(std::string_view name) const {
  return find_by(nodes, name, &Node::name);
}

// --- errors ------------------------------------------------------------------

namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty())
      out += '\n';
    out += line;
  }
  return out;
}

} // namespace

StateError::StateError(std::vector<std::string> problems)
    : std::runtime_error(join_lines(problems)), problems_(std::move(problems)) {}

} // namespace weft

namespace weft::document {

// --- the document parser -----------------------------------------------------

const json* Parser::top_list(const json& document, const char* key) {
  auto it = document.find(key);
  if (it == document.end() || it->is_null())
    return nullptr;
  if (!it->is_array()) {
    problems_.add(key, "must be a list, not " + kind_of(*it));
    return nullptr;
  }
  return &*it;
}

std::optional<std::string>
Parser::resource_id(Fields& fields, std::string_view kind, std::string_view id_key,
                    std::map<std::string, std::string, std::less<>>& seen,
                    const std::string& position) {
  auto id = fields.required_text(id_key);
  if (!id)
    return std::nullopt;
  fields.set_where(label(kind, *id));
  auto [it, inserted] = seen.emplace(*id, position);
  if (!inserted)
    fields.problem(id_key, "is used twice: " + it->second + " and " + position);
  return id;
}

State Parser::parse(const json& document) {
  if (!document.is_object()) {
    problems_.add("document", "must be a JSON object, not " + kind_of(document));
    throw StateError(std::move(problems_.list()));
  }
  const json* nodes = top_list(document, "nodes");
  const json* networks = top_list(document, "networks");
  const json* subnets = top_list(document, "subnets");
  const json* ports = top_list(document, "ports");
  const json* groups = top_list(document, "security_groups");

  // Each kind refers only to kinds parsed before it, except that rules may
  // name any group: their ids are collected first. What no one resource can
  // check is checked once all are parsed.
  if (nodes != nullptr)
    for (std::size_t i = 0; i < nodes->size(); ++i)
      parse_node((*nodes)[i], i);
  if (networks != nullptr)
    for (std::size_t i = 0; i < networks->size(); ++i)
      parse_network((*networks)[i], i);
  if (subnets != nullptr)
    for (std::size_t i = 0; i < subnets->size(); ++i)
      parse_subnet((*subnets)[i], i);
  collect_group_ids(groups);
  if (groups != nullptr)
    for (std::size_t i = 0; i < groups->size(); ++i)
      parse_group((*groups)[i], i);
  if (ports != nullptr)
    for (std::size_t i = 0; i < ports->size(); ++i)
      parse_port((*ports)[i], i);
  validate(state_, origins_, problems_);

  if (problems_.count() > 0)
    throw StateError(std::move(problems_.list()));
  return std::move(state_);
}

} // namespace weft::document

namespace weft {

using document::json;
using document::Parser;

State parse_state(std::string_view json_text) {
  json document;
  try {
    document = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& error) {
    // nlohmann prefixes its messages with "[json.exception.parse_error.101] ".
    std::string_view what = error.what();
    if (what.starts_with("[json.exception.")) {
      auto end = what.find("] ");
      if (end != what.npos)
        what.remove_prefix(end + 2);
    }
    throw StateError({"malformed JSON: " + std::string(what)});
  }
  try {
    return Parser().parse(document);
  } catch (const json::exception& error) {
    // Every access is type-checked first; this is a last line of defence.
    throw StateError({std::string("unexpected JSON value: ") + error.what()});
  }
}

} // namespace weft
