// Nodes: the hosts of the fabric, each with the name its kernel objects are
// pinned under and the tunnel IP other nodes reach it at (unique across
// nodes: validate.cpp).
#include "loader/model/parser.hpp"

#include <algorithm>

namespace weft::document {

namespace {

// Node names become a directory under the bpffs (<bpffs>/weft/<node>/).
bool valid_node_name(std::string_view name) {
  return name != "." && name != ".." && std::none_of(name.begin(), name.end(), [](char c) {
           auto byte = static_cast<unsigned char>(c);
           return c == '/' || byte < 0x20 || byte == 0x7f;
         });
}

} // namespace

void Parser::parse_node(const json& entry, std::size_t index) {
  std::string position = indexed("nodes", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Node node;
  if (auto name = resource_id(fields, "node", "name", node_names_, position)) {
    node.name = *name;
    if (!valid_node_name(*name))
      fields.problem("name", in_quotes(*name) + " is not usable as a directory name");
  }
  if (auto tunnel_ip = fields.text("tunnel_ip")) {
    node.tunnel_ip = IpAddr::parse(*tunnel_ip);
    if (!node.tunnel_ip)
      fields.problem("tunnel_ip", in_quotes(*tunnel_ip) + " is not an IP address");
  }
  origins_.nodes.push_back(fields.where());
  state_.nodes.push_back(std::move(node));
}

} // namespace weft::document
