// Networks and their segment: the provider attributes (vxlan VNI, vlan id
// and physical network, flat physical network), given on the network or in
// its first segment, and the MTU that follows from them. That no two networks
// share a segment is checked in validate.cpp.
#include "loader/model/parser.hpp"

namespace weft::document {

namespace {

constexpr std::int64_t kMinMtu = 68;

} // namespace

void Parser::parse_network(const json& entry, std::size_t index) {
  std::string position = indexed("networks", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Network network;
  auto id = resource_id(fields, "network", "id", network_ids_, position);
  if (id)
    network.id = *id;
  network.name = fields.text("name").value_or("");
  auto project_id = fields.text("project_id");
  auto tenant_id = fields.text("tenant_id");
  if (project_id && tenant_id && *project_id != *tenant_id)
    fields.problem("project_id",
                   in_quotes(*project_id) + " does not match tenant_id " + in_quotes(*tenant_id));
  network.project_id = project_id ? *project_id : tenant_id.value_or("");
  network.admin_state_up = fields.flag("admin_state_up", true);
  network.port_security_enabled = fields.flag("port_security_enabled", true);

  // A multi-segment network carries its provider attributes in `segments`;
  // weft uses the first segment.
  const json* segment_object = &entry;
  std::string segment_path;
  if (fields.value("provider:network_type") == nullptr) {
    const json* segments = fields.list("segments");
    if (segments != nullptr && !segments->empty()) {
      if ((*segments)[0].is_object()) {
        segment_object = &(*segments)[0];
        segment_path = "segments[0].";
      } else {
        fields.problem("segments[0]", "must be an object, not " + kind_of((*segments)[0]));
      }
    }
  }
  Fields segment(*segment_object, fields.where(), segment_path, problems_);
  bool segment_valid = parse_segment(segment, network);

  bool mtu_valid = true;
  network.mtu = network.type == NetworkType::Vxlan ? 1450 : 1500;
  if (auto mtu = fields.integer("mtu")) {
    if (*mtu < kMinMtu || *mtu > 65535) {
      fields.problem("mtu",
                     std::to_string(*mtu) + " is out of range " + range_text(kMinMtu, 65535));
      mtu_valid = false;
    } else {
      network.mtu = static_cast<std::uint32_t>(*mtu);
    }
  } else if (fields.value("mtu") != nullptr) {
    mtu_valid = false;
  }

  if (id && !network_index_.contains(*id))
    network_index_.emplace(*id, state_.networks.size());
  network_mtu_valid_.push_back(mtu_valid);
  origins_.networks.push_back({fields.where(), segment_path, segment_valid});
  state_.networks.push_back(std::move(network));
}

bool Parser::parse_segment(Fields& segment, Network& network) {
  auto type_name = segment.required_text("provider:network_type");
  if (!type_name)
    return false;
  if (*type_name == "vxlan") {
    network.type = NetworkType::Vxlan;
  } else if (*type_name == "vlan") {
    network.type = NetworkType::Vlan;
  } else if (*type_name == "flat") {
    network.type = NetworkType::Flat;
  } else {
    segment.problem("provider:network_type",
                    in_quotes(*type_name) + " is not supported (vxlan, vlan or flat)");
    return false;
  }

  const char* kSegmentationId = "provider:segmentation_id";
  const char* kPhysicalNetwork = "provider:physical_network";
  auto segmentation_id = segment.integer(kSegmentationId);
  bool segmentation_id_given = segment.value(kSegmentationId) != nullptr;
  bool segment_valid = true;

  if (network.type == NetworkType::Flat) {
    if (segmentation_id_given) {
      segment.problem(kSegmentationId, "must be null for a flat network");
      segment_valid = false;
    }
  } else {
    std::int64_t max = network.type == NetworkType::Vxlan ? 16777215 : 4094;
    if (!segmentation_id_given) {
      segment.problem(kSegmentationId, "is missing (a " + *type_name + " network needs one)");
      segment_valid = false;
    } else if (!segmentation_id) {
      segment_valid = false;
    } else if (*segmentation_id < 1 || *segmentation_id > max) {
      segment.problem(kSegmentationId, std::to_string(*segmentation_id) + " is out of range " +
                                           range_text(1, max) + " for " + *type_name);
      segment_valid = false;
    } else {
      network.segmentation_id = static_cast<std::uint32_t>(*segmentation_id);
    }
  }

  if (network.type == NetworkType::Vxlan) {
    network.physical_network.reset(); // tunnels have none
  } else {
    auto physical_network = segment.required_text(kPhysicalNetwork);
    if (physical_network)
      network.physical_network = *physical_network;
    else
      segment_valid = false;
  }

  return segment_valid;
}

} // namespace weft::document
