// The encoding of the security-group maps' keys and rule sets, for every C++
// user alike: the loader's rule compiler, the decoder, and the tests that
// write entries by hand. (What the keys mean is in maps/weft_abi.h.)
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "maps/weft_abi.h"

namespace weft::maps {

// Word `word` of a rule set (rules word*64 .. word*64+63), with its summary bit.
inline void set_rule_word(weft_rule_set& set, std::size_t word, std::uint64_t bits) {
  if (word >= WEFT_SG_WORDS)
    throw std::invalid_argument("rule word " + std::to_string(word) + " is past WEFT_SG_MAX_RULES");
  set.words[word] |= bits;
  if (set.words[word] != 0)
    set.summary[word / 64] |= std::uint64_t{1} << (word % 64);
}

inline void add_rule(weft_rule_set& set, std::uint32_t rule) {
  if (rule >= WEFT_SG_MAX_RULES)
    throw std::invalid_argument("rule " + std::to_string(rule) + " is past WEFT_SG_MAX_RULES");
  set_rule_word(set, rule / 64, std::uint64_t{1} << (rule % 64));
}

inline weft_rule_set rule_set(const std::vector<std::uint32_t>& rules) {
  weft_rule_set set{};
  for (std::uint32_t rule : rules)
    add_rule(set, rule);
  return set;
}

// The rules of a set, ascending (the summary is not consulted).
inline std::vector<std::uint32_t> rules_in(const weft_rule_set& set) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t w = 0; w < WEFT_SG_WORDS; ++w)
    for (std::uint32_t bit = 0; bit < 64; ++bit)
      if ((set.words[w] >> bit) & 1)
        out.push_back(w * 64 + bit);
  return out;
}

// The sg_l4 key of a port block: the `block_prefix_len` (0..16) high bits of
// `block_start` (host order; its other bits zero), of `proto` or
// WEFT_PROTO_ANY. ICMP blocks are type << 8 | code. Throws
// std::invalid_argument for a block that is not one.
inline weft_sg_l4_key sg_l4_key(std::uint32_t policy, std::uint8_t direction, std::uint8_t family,
                                std::uint8_t proto, std::uint16_t block_start,
                                std::uint32_t block_prefix_len) {
  if (block_prefix_len > 16)
    throw std::invalid_argument("port block prefix length " + std::to_string(block_prefix_len));
  std::uint32_t host_mask = block_prefix_len == 16 ? 0 : 0xffffu >> block_prefix_len;
  if (block_start & host_mask)
    throw std::invalid_argument("port block " + std::to_string(block_start) + "/" +
                                std::to_string(block_prefix_len) + " is not aligned");
  if (family != 4 && family != 6)
    throw std::invalid_argument("family " + std::to_string(family));
  weft_sg_l4_key key{};
  key.prefixlen = WEFT_SG_L4_FIXED_BITS + block_prefix_len;
  key.policy = policy;
  key.direction = direction;
  key.family = family;
  key.proto = proto;
  key.port = htons(block_start);
  return key;
}

// The sg_remote key of a remote prefix: `ip` is 16 bytes (IPv4 in the first 4).
inline weft_sg_remote_key sg_remote_key(std::uint32_t policy, std::uint8_t direction,
                                        std::uint8_t family, const std::uint8_t* ip,
                                        std::uint32_t prefix_len) {
  weft_sg_remote_key key{};
  key.prefixlen = WEFT_SG_REMOTE_FIXED_BITS + prefix_len;
  key.policy = policy;
  key.direction = direction;
  key.family = family;
  std::memcpy(key.ip, ip, sizeof key.ip);
  return key;
}

} // namespace weft::maps
