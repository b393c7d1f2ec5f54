// The port program's maps are the registry's (maps/registry.hpp): same names,
// kinds, key and value sizes and capacities, and no pinned map the registry
// does not know. The C++ side iterates the registry; this keeps it true.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <string>

#include "maps/registry.hpp"
#include "tests/prog/port_program.hpp"

namespace weft::test {
namespace {

TEST(MapRegistry, TheObjectsMapsAreTheRegistrysMaps) {
  PortProgram program;
  for (const auto& spec : maps::kMaps) {
    std::string name(spec.name);
    bpf_map* map = bpf_object__find_map_by_name(program.object(), name.c_str());
    ASSERT_NE(map, nullptr) << "the port program has no map " << name;
    EXPECT_EQ(bpf_map__type(map), spec.type) << name;
    EXPECT_EQ(bpf_map__key_size(map), spec.key_size) << name;
    EXPECT_EQ(bpf_map__value_size(map), spec.value_size) << name;
    if (spec.capacity) {
      EXPECT_EQ(bpf_map__max_entries(map), spec.capacity) << name;
    }
  }
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, program.object()) {
    // Internal maps (.rodata) and the per-CPU scratch space are not pinned.
    if (bpf_map__is_internal(map) || bpf_map__type(map) == BPF_MAP_TYPE_PERCPU_ARRAY)
      continue;
    EXPECT_TRUE(maps::find(bpf_map__name(map)))
        << "map " << bpf_map__name(map) << " is not in maps/registry.hpp";
  }
}

} // namespace
} // namespace weft::test
