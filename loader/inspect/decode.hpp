// Map entries and verdict reasons in words: the one place that turns ABI bytes
// into what operators read (`weft map dump`, `apply --dry-run`, `stats`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "loader/fabric/map_io.hpp"

namespace weft {

std::string reason_name(std::uint32_t reason);
std::optional<std::uint32_t> reason_from_name(const std::string& name);
bool reason_is_drop(std::uint32_t reason);

std::string mac_str(const std::uint8_t* mac);
std::string ipv4_str(std::uint32_t be);
std::string ipv6_str(const std::uint8_t* bytes);
// 16 address bytes (IPv4 in the first 4) of family 4 or 6.
std::string ip_str(std::uint8_t family, const std::uint8_t* bytes);
std::string ct_state_name(std::uint8_t state);

// {"key": {...}, "value": {...}} with every field decoded. Per-CPU values
// arrive summed by the caller. Unknown maps decode as byte lists.
nlohmann::json decode_entry(const std::string& map, const Bytes& key, const Bytes& value);

} // namespace weft
