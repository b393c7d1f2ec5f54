// Map entries and verdict reasons in words: the one place that turns ABI bytes
// into what operators read (`weft map dump`, `apply --dry-run`, `stats`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "loader/fabric/map_io.hpp"
#include "maps/weft_abi.h"

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
// arrive merged by merge_percpu(). Unknown maps decode as byte lists.
nlohmann::json decode_entry(const std::string& map, const Bytes& key, const Bytes& value);

// The CPUs' values of one per-CPU entry as one: counters summed word by
// word; of a VTEP's path, the counters summed and the route the FIB gave
// last on any CPU.
Bytes merge_percpu(const std::string& map, const std::vector<Bytes>& cpus);
struct weft_vtep_path merge_vtep_path(const std::vector<Bytes>& cpus);

} // namespace weft
