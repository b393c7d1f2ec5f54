// Every map weft pins, once, for the C++ side: its name, kind, key and value
// types, capacity, and who fills it (apply writes its maps in `apply_order`
// and removes in reverse). Reconcile's order and capacity checks, the fakes,
// `map list`, `map dump` and the prog tests' check of the object's maps all
// iterate this table: a new map is added here and in bpf/lib/maps.h (whose
// definitions a prog test compares with this table).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <linux/bpf.h>
#include <optional>
#include <string_view>
#include <vector>

#include "maps/weft_abi.h"

namespace weft::maps {

// Who writes a map's entries.
enum class Owner {
  Apply,    // weft apply, by reconcile
  Install,  // weft node install (the node configuration)
  Datapath, // the BPF programs (counters, conntrack); the CLI only reads and flushes
};

struct Spec {
  std::string_view name;
  std::uint32_t type; // BPF_MAP_TYPE_*
  std::uint32_t key_size;
  std::uint32_t value_size;
  std::uint32_t capacity; // max_entries; 0: set at install (ct_max)
  Owner owner;
  int apply_order; // Apply maps: the order reconcile writes them in
  bool per_cpu() const {
    return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
           type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  }
};

template <class Key, class Value>
constexpr Spec spec(std::string_view name, std::uint32_t type, std::uint32_t capacity, Owner owner,
                    int apply_order = -1) {
  return {name, type, sizeof(Key), sizeof(Value), capacity, owner, apply_order};
}

// A port's addresses before its entry, its entry before the FDB and flood
// entries that lead to it; removals run in reverse.
inline constexpr std::array kMaps = {
    spec<__u32, weft_node_config>(WEFT_MAP_CONFIG, BPF_MAP_TYPE_ARRAY, 1, Owner::Install),
    spec<__u32, weft_network>(WEFT_MAP_NETWORKS, BPF_MAP_TYPE_HASH, WEFT_MAX_NETWORKS, Owner::Apply,
                              0),
    spec<weft_port_mac_key, __u8>(WEFT_MAP_PORT_MACS, BPF_MAP_TYPE_HASH, WEFT_MAX_SPOOF,
                                  Owner::Apply, 1),
    spec<weft_spoof_v4_key, __u8>(WEFT_MAP_SPOOF_V4, BPF_MAP_TYPE_LPM_TRIE, WEFT_MAX_SPOOF,
                                  Owner::Apply, 2),
    spec<weft_spoof_v6_key, __u8>(WEFT_MAP_SPOOF_V6, BPF_MAP_TYPE_LPM_TRIE, WEFT_MAX_SPOOF,
                                  Owner::Apply, 3),
    spec<weft_arp_key, weft_arp_entry>(WEFT_MAP_ARP, BPF_MAP_TYPE_HASH, WEFT_MAX_ARP, Owner::Apply,
                                       4),
    spec<weft_sg_l4_key, weft_rule_set>(WEFT_MAP_SG_L4, BPF_MAP_TYPE_LPM_TRIE, WEFT_MAX_SG_L4,
                                        Owner::Apply, 5),
    spec<weft_sg_remote_key, weft_rule_set>(WEFT_MAP_SG_REMOTE, BPF_MAP_TYPE_LPM_TRIE,
                                            WEFT_MAX_SG_REMOTE, Owner::Apply, 6),
    spec<__u32, weft_port>(WEFT_MAP_PORTS, BPF_MAP_TYPE_HASH, WEFT_MAX_PORTS, Owner::Apply, 7),
    spec<weft_fdb_key, weft_fdb_entry>(WEFT_MAP_FDB, BPF_MAP_TYPE_HASH, WEFT_MAX_FDB, Owner::Apply,
                                       8),
    spec<__u32, weft_flood>(WEFT_MAP_FLOOD, BPF_MAP_TYPE_HASH, WEFT_MAX_NETWORKS, Owner::Apply, 9),
    // What lets frames in from the wire comes after the ports they reach.
    spec<__be32, weft_vtep>(WEFT_MAP_VTEPS, BPF_MAP_TYPE_HASH, WEFT_MAX_VTEPS, Owner::Apply, 10),
    spec<__u32, __u32>(WEFT_MAP_VNIS, BPF_MAP_TYPE_HASH, WEFT_MAX_NETWORKS, Owner::Apply, 11),
    spec<weft_segment_key, __u32>(WEFT_MAP_SEGMENTS, BPF_MAP_TYPE_HASH, WEFT_MAX_SEGMENTS,
                                  Owner::Apply, 12),
    spec<weft_physnet_key, weft_physnet>(WEFT_MAP_PHYSNETS, BPF_MAP_TYPE_HASH, WEFT_MAX_PHYSNETS,
                                         Owner::Install),
    spec<weft_stat_key, weft_counter>(WEFT_MAP_STATS, BPF_MAP_TYPE_PERCPU_HASH, WEFT_MAX_STATS,
                                      Owner::Datapath),
    spec<weft_sg_hit_key, __u64>(WEFT_MAP_SG_HITS, BPF_MAP_TYPE_PERCPU_HASH, WEFT_MAX_SG_HITS,
                                 Owner::Datapath),
    spec<weft_ct_key, weft_ct_entry>(WEFT_MAP_CT, BPF_MAP_TYPE_HASH, 0, Owner::Datapath),
    spec<weft_ct_key, weft_ct_entry>(WEFT_MAP_CT_NEW, BPF_MAP_TYPE_LRU_HASH, 0, Owner::Datapath),
    spec<__u32, weft_ct_zone>(WEFT_MAP_CT_ZONES, BPF_MAP_TYPE_HASH, WEFT_MAX_NETWORKS,
                              Owner::Datapath),
    spec<weft_frag_key, weft_frag_entry>(WEFT_MAP_FRAGS, BPF_MAP_TYPE_LRU_HASH, WEFT_MAX_FRAGS,
                                         Owner::Datapath),
    spec<__u32, weft_vtep_path>(WEFT_MAP_VTEP_PATHS, BPF_MAP_TYPE_PERCPU_ARRAY, WEFT_MAX_VTEPS,
                                Owner::Datapath),
    spec<__u32, weft_port_stats>(WEFT_MAP_PORT_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, WEFT_MAX_PORTS,
                                 Owner::Datapath),
    spec<__u32, weft_port_hits>(WEFT_MAP_PORT_HITS, BPF_MAP_TYPE_PERCPU_ARRAY, WEFT_MAX_PORTS,
                                Owner::Datapath),
};

inline std::optional<Spec> find(std::string_view name) {
  for (const auto& m : kMaps)
    if (m.name == name)
      return m;
  return std::nullopt;
}

// The maps apply writes, in the order it writes them.
inline std::vector<Spec> applied_in_order() {
  std::vector<Spec> out;
  for (int order = 0;; ++order) {
    bool found = false;
    for (const auto& m : kMaps)
      if (m.owner == Owner::Apply && m.apply_order == order) {
        out.push_back(m);
        found = true;
      }
    if (!found)
      return out;
  }
}

// The ABI's layouts, as the BPF side compiles them (x86-64 and arm64 alike):
// a struct that changes size here must bump WEFT_ABI_VERSION.
static_assert(sizeof(weft_node_config) == 40);
static_assert(sizeof(weft_network) == 16);
static_assert(sizeof(weft_port) == 52);
static_assert(sizeof(weft_fdb_key) == 12 && sizeof(weft_fdb_entry) == 12);
static_assert(sizeof(weft_arp_key) == 8 && sizeof(weft_arp_entry) == 8);
static_assert(sizeof(weft_spoof_v4_key) == 20 && sizeof(weft_spoof_v6_key) == 32);
static_assert(sizeof(weft_port_mac_key) == 12);
static_assert(sizeof(weft_flood) ==
              8 + 4 * std::size_t{WEFT_FLOOD_MAX} + 8 * std::size_t{WEFT_FLOOD_VTEPS_MAX});
static_assert(sizeof(weft_vtep) == 4 && sizeof(weft_segment_key) == 8);
static_assert(sizeof(weft_physnet_key) == WEFT_PHYSNET_NAME_LEN && sizeof(weft_physnet) == 4);
static_assert(sizeof(weft_vtep_path) == 56 &&
              sizeof(weft_port_stats) == 16 * std::size_t{WEFT_REASON_FIRST_DROP});
static_assert(sizeof(weft_stat_key) == 8 && sizeof(weft_counter) == 16);
static_assert(sizeof(weft_rule_set) == 8 * std::size_t{WEFT_SG_SUMMARY_WORDS + WEFT_SG_WORDS});
static_assert(sizeof(weft_sg_hit_key) == 8 && sizeof(weft_port_hits) == 32);
static_assert(sizeof(weft_sg_l4_key) == 16 && sizeof(weft_sg_remote_key) == 28);
static_assert(sizeof(weft_ct_key) == 52 && sizeof(weft_ct_entry) == 72);
static_assert(sizeof(weft_ct_zone) == 8);
static_assert(sizeof(weft_frag_key) == 44 && sizeof(weft_frag_entry) == 8);

} // namespace weft::maps
