// The addresses of the desired state: MACs, IP addresses and IP prefixes,
// parsed from Neutron's text and printed back in one canonical form. Public
// (state.hpp includes it); apart from the resources so that what only handles
// addresses need not see them.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft {

struct Mac {
  std::array<std::uint8_t, 6> bytes{};

  // "fa:16:3e:11:22:33" (any case, ':' or '-'); nullopt if not a MAC.
  static std::optional<Mac> parse(std::string_view text);
  std::string str() const; // lower case, ':'-separated
  bool is_multicast() const { return (bytes[0] & 1) != 0; }
  bool is_zero() const;
  auto operator<=>(const Mac&) const = default;
};

struct IpAddr {
  int family = 0; // AF_INET or AF_INET6
  // IPv4 uses the first 4 bytes, network order.
  std::array<std::uint8_t, 16> bytes{};

  static std::optional<IpAddr> parse(std::string_view text);
  std::string str() const;
  bool is_v4() const;
  std::uint32_t v4_be() const; // network-order IPv4 (is_v4() only)
  auto operator<=>(const IpAddr&) const = default;
};

struct IpPrefix {
  IpAddr addr; // host bits cleared
  int len = 0;

  // "10.0.0.0/24", "fd00::/64"; a bare address is a full-length prefix.
  // nullopt on bad syntax or length. Host bits are cleared.
  static std::optional<IpPrefix> parse(std::string_view text);
  std::string str() const;
  bool contains(const IpAddr& ip) const;
  auto operator<=>(const IpPrefix&) const = default;
};

} // namespace weft
