#include "tests/prog/sg_policy.hpp"

#include "maps/encode.hpp"

#include <arpa/inet.h>
#include <bpf/libbpf.h>

#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string>

namespace weft::test {
namespace {

// Whether every bit of `bytes` from `length` on is zero.
bool host_bits_zero(const Ipv6Address& bytes, std::uint32_t length) {
  for (std::uint32_t bit = length; bit < bytes.size() * 8; ++bit)
    if (bytes[bit / 8] & (0x80 >> (bit % 8)))
      return false;
  return true;
}

template <class Key, class Value>
void update(bpf_map* map, const Key& key, const Value& value, const char* what) {
  if (int err = bpf_map__update_elem(map, &key, sizeof key, &value, sizeof value, BPF_ANY))
    throw std::runtime_error(std::string("update ") + what + ": " + std::strerror(-err));
}

template <class Key> void erase(bpf_map* map, const Key& key, const char* what) {
  if (int err = bpf_map__delete_elem(map, &key, sizeof key, 0))
    throw std::runtime_error(std::string("delete from ") + what + ": " + std::strerror(-err));
}

} // namespace

weft_rule_set rule_set(std::initializer_list<std::uint32_t> rules) {
  return maps::rule_set(std::vector<std::uint32_t>(rules));
}

weft_rule_set rule_set(const std::vector<std::uint32_t>& rules) {
  return maps::rule_set(rules);
}

std::vector<std::uint32_t> rules_of(const weft_rule_set& set) {
  return maps::rules_in(set);
}

IpPrefix ip_prefix(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos)
    throw std::invalid_argument("not a prefix: " + std::string(text));
  std::string_view address = text.substr(0, slash);
  std::string_view length = text.substr(slash + 1);
  IpPrefix prefix{};
  if (address.find(':') == std::string_view::npos) {
    prefix.family = 4;
    Ipv4Address v4 = ipv4(address);
    std::memcpy(prefix.address.data(), &v4, sizeof v4);
  } else {
    prefix.family = 6;
    prefix.address = ipv6(address);
  }
  auto [end, err] = std::from_chars(length.data(), length.data() + length.size(), prefix.length);
  std::uint32_t max_length = prefix.family == 4 ? 32 : 128;
  if (err != std::errc() || end != length.data() + length.size() || length.empty() ||
      prefix.length > max_length)
    throw std::invalid_argument("bad prefix length: " + std::string(text));
  if (!host_bits_zero(prefix.address, prefix.length))
    throw std::invalid_argument("host bits set: " + std::string(text));
  return prefix;
}

IpPrefix host_prefix(Ipv4Address address) {
  IpPrefix prefix{};
  prefix.family = 4;
  std::memcpy(prefix.address.data(), &address, sizeof address);
  prefix.length = 32;
  return prefix;
}

IpPrefix host_prefix(const Ipv6Address& address) {
  return IpPrefix{6, address, 128};
}

weft_sg_l4_key sg_l4_key(std::uint32_t policy, weft_direction direction, std::uint8_t family,
                         std::uint8_t proto, std::uint16_t block_start,
                         std::uint32_t block_prefix_len) {
  return maps::sg_l4_key(policy, static_cast<std::uint8_t>(direction), family, proto, block_start,
                         block_prefix_len);
}

weft_sg_remote_key sg_remote_key(std::uint32_t policy, weft_direction direction,
                                 const IpPrefix& remote) {
  return maps::sg_remote_key(policy, static_cast<std::uint8_t>(direction), remote.family,
                             remote.address.data(), remote.length);
}

void put_sg_l4(bpf_map* sg_l4, const weft_sg_l4_key& key, const weft_rule_set& rules) {
  update(sg_l4, key, rules, "sg_l4");
}

void put_sg_remote(bpf_map* sg_remote, const weft_sg_remote_key& key, const weft_rule_set& rules) {
  update(sg_remote, key, rules, "sg_remote");
}

void erase_sg_l4(bpf_map* sg_l4, const weft_sg_l4_key& key) {
  erase(sg_l4, key, "sg_l4");
}

void erase_sg_remote(bpf_map* sg_remote, const weft_sg_remote_key& key) {
  erase(sg_remote, key, "sg_remote");
}

} // namespace weft::test
