// The map registry (maps/registry.hpp): what reconcile, the fakes, `map list`
// and `map dump` iterate. Every map decodes, apply's order covers exactly its
// maps, and the fakes refuse what the kernel refuses.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "fakes.hpp"
#include "loader/fabric/compile.hpp"
#include "loader/inspect/decode.hpp"
#include "maps/registry.hpp"

namespace weft::test {
namespace {

TEST(Registry, NamesAreUniqueAndEveryMapIsFound) {
  std::set<std::string_view> names;
  for (const auto& spec : maps::kMaps) {
    EXPECT_TRUE(names.insert(spec.name).second) << spec.name << " is listed twice";
    ASSERT_TRUE(maps::find(spec.name)) << spec.name;
    EXPECT_EQ(maps::find(spec.name)->key_size, spec.key_size);
  }
  EXPECT_FALSE(maps::find("no-such-map"));
}

TEST(Registry, ApplyWritesExactlyItsMapsInOneOrder) {
  std::vector<std::string> expected;
  for (const auto& spec : maps::applied_in_order())
    expected.emplace_back(spec.name);
  EXPECT_EQ(reconciled_maps(), expected);
  std::size_t apply_maps = 0;
  for (const auto& spec : maps::kMaps)
    apply_maps += spec.owner == maps::Owner::Apply;
  EXPECT_EQ(expected.size(), apply_maps) << "an apply map without a place in the order";
}

TEST(Registry, EveryMapDecodes) {
  // A map without a decoder would be dumped as raw bytes (a JSON array).
  for (const auto& spec : maps::kMaps) {
    Bytes key(spec.key_size, 0), value(spec.value_size, 0);
    auto entry = decode_entry(std::string(spec.name), key, value);
    EXPECT_FALSE(entry["key"].is_array()) << spec.name << " has no decoder: " << entry.dump();
    EXPECT_FALSE(entry["value"].is_array() && entry["value"].size() == spec.value_size)
        << spec.name << " value is not decoded: " << entry.dump();
  }
}

TEST(Registry, FakesRefuseWhatTheKernelRefuses) {
  FakeMaps fakes;
  MemoryMap& ports = fakes[WEFT_MAP_PORTS];
  EXPECT_THROW(ports.update(Bytes(3, 0), to_bytes(weft_port{})), std::invalid_argument);
  EXPECT_THROW(ports.update(to_bytes(std::uint32_t{1}), Bytes(2, 0)), std::invalid_argument);
  for (std::uint32_t ifindex = 0; ifindex < WEFT_MAX_PORTS; ++ifindex)
    ports.update(to_bytes(ifindex), to_bytes(weft_port{}));
  EXPECT_THROW(ports.update(to_bytes(std::uint32_t{WEFT_MAX_PORTS}), to_bytes(weft_port{})),
               std::length_error);
  // Changing an entry of a full map is fine.
  EXPECT_NO_THROW(ports.update(to_bytes(std::uint32_t{7}), to_bytes(weft_port{})));
}

} // namespace
} // namespace weft::test
