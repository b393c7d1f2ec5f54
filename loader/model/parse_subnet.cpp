// Subnets: a CIDR in a known network, its IP version and its gateway, with
// the address checks neutron-lib makes (host bits, reserved addresses, the
// IPv6 minimum MTU).
#include "loader/model/parser.hpp"

namespace weft::document {

namespace {

constexpr std::int64_t kMinIpv6Mtu = 1280;

} // namespace

std::optional<std::string> reserved_address(const IpPrefix& cidr, const IpAddr& ip) {
  if (ip == cidr.addr)
    return "the network address";
  if (cidr.addr.is_v4()) {
    IpAddr broadcast = cidr.addr;
    for (int bit = cidr.len; bit < 32; ++bit)
      broadcast.bytes[bit / 8] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
    if (ip == broadcast)
      return "the broadcast address";
  }
  return std::nullopt;
}

void Parser::parse_subnet(const json& entry, std::size_t index) {
  std::string position = indexed("subnets", index);
  if (!entry.is_object()) {
    problems_.add(position, "must be an object, not " + kind_of(entry));
    return;
  }
  Fields fields(entry, position, "", problems_);
  Subnet subnet;
  auto id = resource_id(fields, "subnet", "id", subnet_ids_, position);
  if (id)
    subnet.id = *id;

  const Network* network = nullptr;
  bool network_mtu_valid = false;
  if (auto network_id = fields.required_text("network_id")) {
    subnet.network_id = *network_id;
    auto it = network_index_.find(*network_id);
    if (it == network_index_.end()) {
      fields.problem("network_id", in_quotes(*network_id) + " is not a known network");
    } else {
      network = &state_.networks[it->second];
      network_mtu_valid = network_mtu_valid_[it->second];
    }
  }

  bool cidr_valid = false;
  if (auto cidr = fields.required_text("cidr")) {
    auto prefix = IpPrefix::parse(*cidr);
    if (!prefix || cidr->find('/') == std::string::npos) {
      fields.problem("cidr", in_quotes(*cidr) + " is not an IP prefix (address/length)");
    } else if (IpAddr::parse(std::string_view(*cidr).substr(0, cidr->find('/'))) != prefix->addr) {
      fields.problem("cidr",
                     in_quotes(*cidr) + " has host bits set; did you mean " + prefix->str() + "?");
    } else {
      subnet.cidr = *prefix;
      cidr_valid = true;
    }
  }

  auto ip_version = fields.integer("ip_version");
  if (ip_version && *ip_version != 4 && *ip_version != 6) {
    fields.problem("ip_version", std::to_string(*ip_version) + " is not 4 or 6");
  } else if (cidr_valid) {
    int cidr_version = subnet.cidr.addr.is_v4() ? 4 : 6;
    if (ip_version && *ip_version != cidr_version) {
      fields.problem("ip_version",
                     std::to_string(*ip_version) + " does not match cidr " + subnet.cidr.str());
      cidr_valid = false;
    }
    subnet.ip_version = cidr_version;
  } else if (ip_version) {
    subnet.ip_version = static_cast<int>(*ip_version);
  }

  if (auto gateway = fields.text("gateway_ip")) {
    subnet.gateway_ip = IpAddr::parse(*gateway);
    if (!subnet.gateway_ip) {
      fields.problem("gateway_ip", in_quotes(*gateway) + " is not an IP address");
    } else if (cidr_valid) {
      if (!subnet.cidr.contains(*subnet.gateway_ip))
        fields.problem("gateway_ip",
                       subnet.gateway_ip->str() + " is not inside cidr " + subnet.cidr.str());
      else if (auto reserved = reserved_address(subnet.cidr, *subnet.gateway_ip))
        fields.problem("gateway_ip",
                       subnet.gateway_ip->str() + " is " + *reserved + " of " + subnet.cidr.str());
    }
  }
  subnet.enable_dhcp = fields.flag("enable_dhcp", true);

  // Neutron refuses IPv6 subnets on networks that cannot carry IPv6.
  if (network != nullptr && network_mtu_valid && cidr_valid && subnet.ip_version == 6 &&
      network->mtu < kMinIpv6Mtu)
    fields.problem("ip_version", "6 needs a network mtu of at least " +
                                     std::to_string(kMinIpv6Mtu) + " (network " +
                                     printable(network->id) + " has " +
                                     std::to_string(network->mtu) + ")");

  if (id && !subnet_index_.contains(*id))
    subnet_index_.emplace(*id, state_.subnets.size());
  origins_.subnet_cidr_valid.push_back(cidr_valid);
  state_.subnets.push_back(std::move(subnet));
}

} // namespace weft::document
