// Parsing and printing MACs, IP addresses and IP prefixes. Parsing is strict
// (a document's address either is one or is a problem) and a prefix's host
// bits are cleared, so that equal networks compare equal.
#include "loader/model/address.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "loader/model/text.hpp"

namespace weft {

using document::all_digits;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// Clears every bit after the first `len`.
IpAddr masked(IpAddr ip, int len) {
  for (int byte = 0; byte < 16; ++byte) {
    int keep = std::clamp(len - byte * 8, 0, 8);
    ip.bytes[byte] &= static_cast<std::uint8_t>(0xff00u >> keep);
  }
  return ip;
}

int max_prefix_len(const IpAddr& ip) {
  return ip.is_v4() ? 32 : 128;
}

} // namespace

std::optional<Mac> Mac::parse(std::string_view text) {
  if (text.size() != 17)
    return std::nullopt;
  char separator = text[2];
  if (separator != ':' && separator != '-')
    return std::nullopt;
  Mac mac;
  for (std::size_t i = 0; i < 6; ++i) {
    std::size_t pos = i * 3;
    if (i > 0 && text[pos - 1] != separator)
      return std::nullopt;
    int high = hex_value(text[pos]);
    int low = hex_value(text[pos + 1]);
    if (high < 0 || low < 0)
      return std::nullopt;
    mac.bytes[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return mac;
}

std::string Mac::str() const {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return text;
}

bool Mac::is_zero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would hide a trailing part.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN || text.find('\0') != text.npos)
    return std::nullopt;
  std::string c_text(text);
  IpAddr ip;
  ip.family = c_text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(ip.family, c_text.c_str(), ip.bytes.data()) != 1)
    return std::nullopt;
  return ip;
}

std::string IpAddr::str() const {
  if (family != AF_INET && family != AF_INET6)
    return "";
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, bytes.data(), text, sizeof(text)) == nullptr)
    return "";
  return text;
}

bool IpAddr::is_v4() const {
  return family == AF_INET;
}

std::uint32_t IpAddr::v4_be() const {
  std::uint32_t be = 0;
  std::memcpy(&be, bytes.data(), sizeof(be));
  return be;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  std::size_t slash = text.find('/');
  auto ip = IpAddr::parse(text.substr(0, slash));
  if (!ip)
    return std::nullopt;
  int len = max_prefix_len(*ip);
  if (slash != text.npos) {
    std::string_view digits = text.substr(slash + 1);
    if (!all_digits(digits) || digits.size() > 3)
      return std::nullopt;
    std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (len > max_prefix_len(*ip))
      return std::nullopt;
  }
  IpPrefix prefix;
  prefix.addr = masked(*ip, len);
  prefix.len = len;
  return prefix;
}

std::string IpPrefix::str() const {
  return addr.str() + "/" + std::to_string(len);
}

bool IpPrefix::contains(const IpAddr& ip) const {
  return ip.family == addr.family && masked(ip, len) == addr;
}

} // namespace weft
