// Compile and reconcile against fakes: the map contents a document gives, and
// that an apply writes only what changed.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <set>
#include <vector>

#include "fakes.hpp"
#include "loader/model/state.hpp"

namespace weft::test {
namespace {

std::string port_json(const std::string& id, const std::string& net, const std::string& mac,
                      const std::string& ip, const std::string& host = "node1",
                      const std::string& extra = "") {
  return R"({"id":")" + id + R"(","network_id":")" + net + R"(","mac_address":")" + mac +
         R"(","fixed_ips":[{"ip_address":")" + ip + R"("}],"binding:host_id":")" + host + "\"" +
         extra + "}";
}

std::string document(const std::vector<std::string>& ports) {
  std::string doc = R"({"networks":[
    {"id":"net-a","name":"a","provider:network_type":"vxlan","provider:segmentation_id":100},
    {"id":"net-b","name":"b","provider:network_type":"vxlan","provider:segmentation_id":200}],
   "subnets":[
    {"id":"sub-a","network_id":"net-a","cidr":"10.0.0.0/24"},
    {"id":"sub-b","network_id":"net-b","cidr":"10.0.0.0/24"}],
   "ports":[)";
  for (std::size_t i = 0; i < ports.size(); ++i)
    doc += (i ? "," : "") + ports[i];
  return doc + "]}";
}

const std::string kPortA1 =
    port_json("a1000000-0000-4000-8000-000000000001", "net-a", "fa:16:3e:00:00:01", "10.0.0.1");
const std::string kPortA2 =
    port_json("a2000000-0000-4000-8000-000000000002", "net-a", "fa:16:3e:00:00:02", "10.0.0.2");
// Same MAC and IP as A1, other tenant.
const std::string kPortB1 =
    port_json("b1000000-0000-4000-8000-000000000001", "net-b", "fa:16:3e:00:00:01", "10.0.0.1");
// Only net-b, with B1.
const std::string kOnlyB = R"({"networks":[
    {"id":"net-b","name":"b","provider:network_type":"vxlan","provider:segmentation_id":200}],
   "subnets":[{"id":"sub-b","network_id":"net-b","cidr":"10.0.0.0/24"}],
   "ports":[)" + kPortB1 + "]}";
const std::string kRemoteA3 = port_json("a3000000-0000-4000-8000-000000000003", "net-a",
                                        "fa:16:3e:00:00:03", "10.0.0.3", "node2");

struct Harness {
  Harness() {
    devices.add("tapa1000000-00", 11);
    devices.add("tapa2000000-00", 12);
    devices.add("tapb1000000-00", 21);
  }
  Fabric fabric() { return Fabric(maps.set(), attacher, devices, records, "node1"); }
  Plan apply(const std::string& doc) {
    auto f = fabric();
    Plan plan = f.plan(parse_state(doc));
    f.execute(plan, doc);
    return plan;
  }
  FakeMaps maps;
  FakeAttacher attacher;
  FakeDevices devices;
  MemoryRecordStore records;
};

std::optional<weft_fdb_entry> fdb_entry(Harness& h, const weft_fdb_key& key) {
  return Map<weft_fdb_key, weft_fdb_entry>(h.maps[WEFT_MAP_FDB]).get(key);
}
std::optional<weft_port> port_entry(Harness& h, std::uint32_t ifindex) {
  return Map<std::uint32_t, weft_port>(h.maps[WEFT_MAP_PORTS]).get(ifindex);
}
std::optional<weft_flood> flood_entry(Harness& h, std::uint32_t net_id) {
  return Map<std::uint32_t, weft_flood>(h.maps[WEFT_MAP_FLOOD]).get(net_id);
}
std::optional<weft_arp_entry> arp_entry(Harness& h, const weft_arp_key& key) {
  return Map<weft_arp_key, weft_arp_entry>(h.maps[WEFT_MAP_ARP]).get(key);
}
std::optional<std::uint8_t> spoof_entry(Harness& h, const weft_spoof_v4_key& key) {
  return Map<weft_spoof_v4_key, std::uint8_t>(h.maps[WEFT_MAP_SPOOF_V4]).get(key);
}
std::optional<std::uint8_t> mac_entry(Harness& h, const weft_port_mac_key& key) {
  return Map<weft_port_mac_key, std::uint8_t>(h.maps[WEFT_MAP_PORT_MACS]).get(key);
}

weft_fdb_key fdb_key(std::uint32_t net_id, const char* mac) {
  weft_fdb_key key{};
  key.net_id = net_id;
  auto parsed = Mac::parse(mac);
  std::memcpy(key.mac, parsed->bytes.data(), 6);
  return key;
}

TEST(Compile, SameMacInTwoNetworksGetsTwoSegments) {
  Harness h;
  h.apply(document({kPortA1, kPortA2, kPortB1}));
  auto a = fdb_entry(h, fdb_key(1, "fa:16:3e:00:00:01"));
  auto b = fdb_entry(h, fdb_key(2, "fa:16:3e:00:00:01"));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->ifindex, 11u);
  EXPECT_EQ(b->ifindex, 21u);
  auto port_b = port_entry(h, 21u);
  ASSERT_TRUE(port_b);
  EXPECT_EQ(port_b->net_id, 2u);
  EXPECT_EQ(port_b->flags, WEFT_PORT_SECURITY | WEFT_PORT_UP);
}

TEST(Compile, FloodListsHoldOnlyTheNetworksLocalPorts) {
  Harness h;
  h.apply(document({kPortA1, kPortA2, kPortB1, kRemoteA3}));
  auto a = flood_entry(h, 1u);
  auto b = flood_entry(h, 2u);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->count, 2u);
  EXPECT_EQ(a->ifindex[0], 11u);
  EXPECT_EQ(a->ifindex[1], 12u);
  ASSERT_EQ(b->count, 1u);
  EXPECT_EQ(b->ifindex[0], 21u);
}

TEST(Compile, ArpResponderKnowsRemotePortsButFdbOnlyLocalOnes) {
  Harness h;
  h.apply(document({kPortA1, kRemoteA3}));
  weft_arp_key key{1, IpAddr::parse("10.0.0.3")->v4_be()};
  auto entry = arp_entry(h, key);
  ASSERT_TRUE(entry);
  Mac mac;
  std::memcpy(mac.bytes.data(), entry->mac, 6);
  EXPECT_EQ(mac.str(), "fa:16:3e:00:00:03");
  EXPECT_FALSE(fdb_entry(h, fdb_key(1, "fa:16:3e:00:00:03")));
  EXPECT_EQ(h.attacher.attached.count("tapa3000000-00"), 0u);
}

TEST(Compile, AllowedPairCidrBecomesAnLpmPrefixWithThePairsMac) {
  Harness h;
  std::string port = port_json(
      "a1000000-0000-4000-8000-000000000001", "net-a", "fa:16:3e:00:00:01", "10.0.0.1", "node1",
      R"(,"allowed_address_pairs":[{"ip_address":"10.0.0.128/25","mac_address":"fa:16:3e:00:00:99"}])");
  h.apply(document({port}));
  weft_spoof_v4_key key{};
  key.prefixlen = WEFT_SPOOF_V4_FIXED_BITS + 25;
  key.ifindex = 11;
  std::memcpy(key.mac, Mac::parse("fa:16:3e:00:00:99")->bytes.data(), 6);
  key.ip = IpAddr::parse("10.0.0.128")->v4_be();
  EXPECT_TRUE(spoof_entry(h, key));
  weft_port_mac_key mac_key{};
  mac_key.ifindex = 11;
  std::memcpy(mac_key.mac, key.mac, 6);
  EXPECT_TRUE(mac_entry(h, mac_key));
  // The pair's MAC is delivered to the port too.
  auto fdb = fdb_entry(h, fdb_key(1, "fa:16:3e:00:00:99"));
  ASSERT_TRUE(fdb);
  EXPECT_EQ(fdb->ifindex, 11u);
}

TEST(Compile, Ipv6SourcesAreFixedIpsPairsAndTheEui64LinkLocal) {
  Harness h;
  std::string port =
      port_json("a1000000-0000-4000-8000-000000000001", "net-a", "fa:16:3e:00:00:01", "10.0.0.1",
                "node1", R"(,"allowed_address_pairs":[{"ip_address":"fd00::/64"}])");
  h.apply(document({port}));
  auto has = [&](const char* ip, int len) {
    weft_spoof_v6_key key{};
    key.prefixlen = WEFT_SPOOF_V6_FIXED_BITS + len;
    key.ifindex = 11;
    std::memcpy(key.mac, Mac::parse("fa:16:3e:00:00:01")->bytes.data(), 6);
    std::memcpy(key.ip, IpAddr::parse(ip)->bytes.data(), 16);
    return Map<weft_spoof_v6_key, std::uint8_t>(h.maps[WEFT_MAP_SPOOF_V6]).get(key).has_value();
  };
  // fa:16:3e:00:00:01 -> fe80::f816:3eff:fe00:1 (the universal/local bit flipped).
  EXPECT_TRUE(has("fe80::f816:3eff:fe00:1", 128));
  EXPECT_TRUE(has("fd00::", 64));
  EXPECT_FALSE(has("fe80::f816:3eff:fe00:2", 128));
  EXPECT_EQ(h.maps[WEFT_MAP_SPOOF_V6].dump().size(), 2u);
}

TEST(Compile, PortSecurityOffWritesNoAntiSpoofingEntries) {
  Harness h;
  std::string port = port_json("a1000000-0000-4000-8000-000000000001", "net-a", "fa:16:3e:00:00:01",
                               "10.0.0.1", "node1", R"(,"port_security_enabled":false)");
  h.apply(document({port}));
  EXPECT_TRUE(h.maps[WEFT_MAP_SPOOF_V4].dump().empty());
  EXPECT_TRUE(h.maps[WEFT_MAP_PORT_MACS].dump().empty());
  auto entry = port_entry(h, 11u);
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->flags, WEFT_PORT_UP);
}

TEST(Reconcile, SecondApplyOfTheSameDocumentWritesNothing) {
  Harness h;
  std::string doc = document({kPortA1, kPortA2, kPortB1});
  Plan first = h.apply(doc);
  EXPECT_FALSE(first.empty());
  int writes = h.maps.writes();
  int attaches = h.attacher.attaches;
  Plan second = h.apply(doc);
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(h.maps.writes(), writes);
  EXPECT_EQ(h.attacher.attaches, attaches);
}

TEST(Reconcile, AddingAPortWritesOnlyItsEntries) {
  Harness h;
  h.apply(document({kPortA1, kPortB1}));
  Plan plan = h.apply(document({kPortA1, kPortA2, kPortB1}));
  // A2: ports, fdb, arp, port_macs, spoof_v4 and its link-local spoof_v6
  // entry added; net-a's flood list changed.
  int added = 0, changed = 0;
  for (const auto& c : plan.changes) {
    added += c.kind == MapChange::Kind::Add;
    changed += c.kind == MapChange::Kind::Change;
    EXPECT_NE(c.kind, MapChange::Kind::Remove);
  }
  EXPECT_EQ(added, 6);
  EXPECT_EQ(changed, 1);
  ASSERT_EQ(plan.attach.size(), 1u);
  EXPECT_EQ(plan.attach[0].device, "tapa2000000-00");
}

TEST(Reconcile, RemovedPortIsDetachedAndItsEntriesAndCountersGo) {
  Harness h;
  h.apply(document({kPortA1, kPortA2}));
  Map<weft_stat_key, weft_counter>(h.maps[WEFT_MAP_STATS]).put({12, WEFT_DELIVERED}, {3, 300});
  Map<weft_stat_key, weft_counter>(h.maps[WEFT_MAP_STATS]).put({11, WEFT_DELIVERED}, {1, 100});
  Plan plan = h.apply(document({kPortA1}));
  ASSERT_EQ(plan.detach.size(), 1u);
  EXPECT_EQ(plan.detach[0].device, "tapa2000000-00");
  EXPECT_EQ(h.attacher.attached.count("tapa2000000-00"), 0u);
  EXPECT_FALSE(port_entry(h, 12u));
  EXPECT_FALSE(fdb_entry(h, fdb_key(1, "fa:16:3e:00:00:02")));
  EXPECT_EQ(plan.stale_stats, 1u);
  EXPECT_EQ(h.maps[WEFT_MAP_STATS].dump().size(), 1u);
  auto flood = flood_entry(h, 1u);
  ASSERT_TRUE(flood);
  EXPECT_EQ(flood->count, 1u);
}

TEST(Reconcile, PortWithoutDeviceWaitsAndAttachesOnceItExists) {
  Harness h;
  std::string late =
      port_json("c1000000-0000-4000-8000-000000000001", "net-a", "fa:16:3e:00:00:07", "10.0.0.7");
  Plan plan = h.apply(document({kPortA1, late}));
  ASSERT_EQ(plan.waiting.size(), 1u);
  EXPECT_EQ(plan.waiting[0].device, "tapc1000000-00");
  EXPECT_FALSE(fdb_entry(h, fdb_key(1, "fa:16:3e:00:00:07")));
  h.devices.add("tapc1000000-00", 31);
  plan = h.apply(document({kPortA1, late}));
  EXPECT_TRUE(plan.waiting.empty());
  ASSERT_EQ(plan.attach.size(), 1u);
  EXPECT_EQ(h.attacher.attached.at("tapc1000000-00"), 31);
  EXPECT_TRUE(port_entry(h, 31u));
}

TEST(Reconcile, NetIdsStayStableWhenNetworksComeAndGo) {
  Harness h;
  h.apply(document({kPortA1, kPortB1}));
  auto ids = h.records.load()->net_ids;
  EXPECT_EQ(ids.at("net-a"), 1u);
  EXPECT_EQ(ids.at("net-b"), 2u);
  // Drop net-a from the document: net-b keeps 2.
  h.apply(kOnlyB);
  EXPECT_EQ(h.records.load()->net_ids.at("net-b"), 2u);
  EXPECT_EQ(h.records.load()->net_ids.count("net-a"), 0u);
  EXPECT_TRUE(port_entry(h, 21u));
}

TEST(Reconcile, ALostRecordKeepsNetIdsFromThePinnedNetworks) {
  Harness h;
  h.apply(document({kPortA1, kPortB1}));
  h.apply(kOnlyB);
  ASSERT_EQ(h.records.load()->net_ids.at("net-b"), 2u);
  // The record is gone (a crash, a hand edit): net-b is still segment 2 in
  // the maps, so it stays 2 and the apply writes nothing.
  h.records = MemoryRecordStore();
  int writes = h.maps.writes();
  Plan again = h.apply(kOnlyB);
  EXPECT_TRUE(again.changes.empty());
  EXPECT_EQ(h.maps.writes(), writes);
  EXPECT_EQ(h.records.load()->net_ids.at("net-b"), 2u);
}

// Counters live in slots the ports keep from one apply to the next; a slot
// given to a port that did not have it is zeroed first, so it never shows
// the counts of the port that held it before.
TEST(Reconcile, PortsKeepTheirCounterSlotsAndAReusedSlotStartsAtZero) {
  Harness h;
  h.apply(document({kPortA1, kPortA2, kPortB1}));
  auto slot_of = [&](std::uint32_t ifindex) { return port_entry(h, ifindex)->stat_slot; };
  std::set<std::uint32_t> slots = {slot_of(11), slot_of(12), slot_of(21)};
  EXPECT_EQ(slots, (std::set<std::uint32_t>{1, 2, 3}));
  std::uint32_t a2 = slot_of(12), b1 = slot_of(21);
  weft_port_stats counted{};
  counted.reason[WEFT_FWD_UNICAST].packets = 7;
  Map<std::uint32_t, weft_port_stats>(h.maps[WEFT_MAP_PORT_STATS]).put(a2, counted);

  Plan without = h.apply(document({kPortA1, kPortB1}));
  EXPECT_TRUE(without.fresh_stat_slots.empty());
  EXPECT_EQ(slot_of(21), b1);
  Plan again = h.apply(document({kPortA1, kPortA2, kPortB1}));
  EXPECT_EQ(again.fresh_stat_slots, std::vector<std::uint32_t>{a2});
  EXPECT_EQ(slot_of(12), a2);
  auto zeroed = Map<std::uint32_t, weft_port_stats>(h.maps[WEFT_MAP_PORT_STATS]).get(a2);
  ASSERT_TRUE(zeroed);
  EXPECT_EQ(zeroed->reason[WEFT_FWD_UNICAST].packets, 0u);
  // Nothing changed: nothing to zero.
  EXPECT_TRUE(h.apply(document({kPortA1, kPortA2, kPortB1})).empty());
}

// Each other node's VTEP has a slot for its route and counters, kept in the
// vteps map; the FDB entries and flood lists that lead to it carry it.
TEST(Reconcile, VtepsKeepTheirSlotsAndTheFdbCarriesThem) {
  auto doc = [](const std::vector<std::string>& ports, bool with_node2) {
    std::string d = document(ports);
    std::string nodes =
        R"({"nodes":[{"name":"node1","tunnel_ip":"192.0.2.1"},)" +
        std::string(with_node2 ? R"({"name":"node2","tunnel_ip":"192.0.2.2"},)" : "") +
        R"({"name":"node3","tunnel_ip":"192.0.2.3"}],)";
    return nodes + d.substr(1);
  };
  const std::string remote3 = port_json("a4000000-0000-4000-8000-000000000004", "net-a",
                                        "fa:16:3e:00:00:04", "10.0.0.4", "node3");
  Harness h;
  h.apply(doc({kPortA1, kRemoteA3, remote3}, true));
  Map<std::uint32_t, weft_vtep> vteps(h.maps[WEFT_MAP_VTEPS]);
  std::uint32_t node2 = inet_addr("192.0.2.2"), node3 = inet_addr("192.0.2.3");
  ASSERT_TRUE(vteps.get(node2) && vteps.get(node3));
  std::uint32_t slot3 = vteps.get(node3)->slot;
  EXPECT_NE(slot3, 0u);
  EXPECT_NE(vteps.get(node2)->slot, slot3);
  weft_fdb_key key{};
  key.net_id = 1;
  std::memcpy(key.mac, "\xfa\x16\x3e\x00\x00\x04", 6);
  ASSERT_TRUE(fdb_entry(h, key));
  EXPECT_EQ(fdb_entry(h, key)->vtep, node3);
  EXPECT_EQ(fdb_entry(h, key)->vtep_slot, slot3);
  auto flood = flood_entry(h, 1);
  ASSERT_TRUE(flood);
  for (std::uint32_t i = 0; i < flood->vtep_count; ++i)
    EXPECT_EQ(flood->vtep_slots[i], vteps.get(flood->vteps[i])->slot);

  // node2 leaves: node3 keeps its slot, nothing of it is zeroed.
  Plan plan = h.apply(doc({kPortA1, remote3}, false));
  EXPECT_EQ(vteps.get(node3)->slot, slot3);
  EXPECT_TRUE(plan.fresh_vtep_slots.empty());
}

TEST(Reconcile, DeviceRecreatedWithANewIfindexMovesThePort) {
  Harness h;
  h.apply(document({kPortA1, kPortA2}));
  h.devices.remove("tapa2000000-00");
  h.devices.add("tapa2000000-00", 42);
  Plan plan = h.apply(document({kPortA1, kPortA2}));
  EXPECT_FALSE(port_entry(h, 12u));
  EXPECT_TRUE(port_entry(h, 42u));
  EXPECT_EQ(h.attacher.attached.at("tapa2000000-00"), 42);
  auto fdb = fdb_entry(h, fdb_key(1, "fa:16:3e:00:00:02"));
  ASSERT_TRUE(fdb);
  EXPECT_EQ(fdb->ifindex, 42u);
}

// Rule hits are counted by rule number: they start again when the rules
// change, and stay when only something else does.
TEST(Reconcile, RuleHitsStartAgainWhenRulesChange) {
  Harness h;
  auto doc = [&](const std::string& port, const std::string& extra_port) {
    std::string d =
        document({port_json("a1000000-0000-4000-8000-000000000001", "net-a", "fa:16:3e:00:00:01",
                            "10.0.0.1", "node1", R"(,"security_groups":["web"])"),
                  extra_port});
    d.pop_back();
    return d + R"(,"security_groups":[{"id":"web","security_group_rules":[)" + port + "]}]}";
  };
  const std::string tcp80 =
      R"({"direction":"ingress","protocol":"tcp","port_range_min":80,"port_range_max":80})";
  const std::string tcp81 =
      R"({"direction":"ingress","protocol":"tcp","port_range_min":81,"port_range_max":81})";
  h.apply(doc(tcp80, kPortB1));
  Map<weft_sg_hit_key, std::uint64_t>(h.maps[WEFT_MAP_SG_HITS]).put({1, 0}, 5);
  h.apply(doc(tcp80, kPortA2)); // ports change, rules do not
  EXPECT_EQ(h.maps[WEFT_MAP_SG_HITS].dump().size(), 1u);
  h.apply(doc(tcp81, kPortA2));
  EXPECT_TRUE(h.maps[WEFT_MAP_SG_HITS].dump().empty());
}

TEST(Diff, ReportsAddsChangesAndRemovals) {
  std::map<Bytes, Bytes> desired = {{{1}, {10}}, {{2}, {20}}};
  std::map<Bytes, Bytes> actual = {{{2}, {21}}, {{3}, {30}}};
  auto changes = diff_map("m", desired, actual);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].kind, MapChange::Kind::Add);
  EXPECT_EQ(changes[1].kind, MapChange::Kind::Change);
  EXPECT_EQ(changes[2].kind, MapChange::Kind::Remove);
  EXPECT_EQ(changes[2].value, Bytes{30});
}

} // namespace
} // namespace weft::test
