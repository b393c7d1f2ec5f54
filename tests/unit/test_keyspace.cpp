// weft's keys in etcd (loader/agent/keyspace.cpp): the state document that
// the keys under <prefix>/state/ make, and what is refused with its key named.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "loader/agent/keyspace.hpp"
#include "loader/model/state.hpp"

using nlohmann::json;

namespace weft::test {
namespace {

const char* kNetwork = R"({"id": "n1", "name": "blue", "provider:network_type": "vxlan",
  "provider:segmentation_id": 1001, "mtu": 1450})";
const char* kPort = R"({"id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01",
  "fixed_ips": [], "binding:host_id": "node1", "port_security_enabled": false})";

TEST(Keyspace, KeysAreUnderThePrefixWithoutADoubleSlash) {
  Keyspace keys("/weft/");
  EXPECT_EQ(keys.state(), "/weft/state/");
  EXPECT_EQ(keys.agent("node1"), "/weft/agents/node1");
  EXPECT_EQ(keys.status("node1", "p1"), "/weft/status/node1/p1");
}

TEST(Keyspace, RangeEndIsThePrefixWithItsLastByteIncremented) {
  EXPECT_EQ(range_end("/weft/state/"), "/weft/state0");
  EXPECT_EQ(range_end(std::string("a\xff", 2)), "b");
}

TEST(Keyspace, TheKeysMakeOneDocumentThatParses) {
  Keyspace keys("/weft");
  Snapshot snapshot = keys.document(
      {{"/weft/state/networks/n1", kNetwork},
       {"/weft/state/ports/p1", kPort},
       {"/weft/state/nodes/node1", R"({"name": "node1", "tunnel_ip": "172.31.0.1"})"}},
      42);
  ASSERT_EQ(snapshot.refused, "");
  EXPECT_EQ(snapshot.revision, 42);
  json doc = json::parse(snapshot.document);
  EXPECT_EQ(doc["networks"].size(), 1U);
  EXPECT_EQ(doc["ports"][0]["id"], "p1");
  EXPECT_EQ(doc["nodes"][0]["tunnel_ip"], "172.31.0.1");
  EXPECT_EQ(doc["security_groups"], json::array());
  State state = parse_state(snapshot.document);
  EXPECT_EQ(state.ports.size(), 1U);
}

TEST(Keyspace, NoKeysMakeAnEmptyDocument) {
  Snapshot snapshot = Keyspace("/weft").document({}, 7);
  EXPECT_EQ(snapshot.refused, "");
  EXPECT_EQ(parse_state(snapshot.document).ports.size(), 0U);
}

TEST(Keyspace, AValueThatIsNotJsonIsRefusedWithItsKey) {
  Snapshot snapshot = Keyspace("/weft").document(
      {{"/weft/state/networks/n1", kNetwork}, {"/weft/state/ports/p1", "{not json"}}, 3);
  EXPECT_EQ(snapshot.document, "");
  EXPECT_EQ(snapshot.refused, "etcd key /weft/state/ports/p1: the value is not a JSON object");
}

TEST(Keyspace, AnIdThatIsNotTheKeysIsRefused) {
  Snapshot snapshot = Keyspace("/weft").document({{"/weft/state/ports/p2", kPort}}, 3);
  EXPECT_EQ(snapshot.refused, "etcd key /weft/state/ports/p2: its id is not the key's 'p2'");
}

TEST(Keyspace, AKindWeftDoesNotKnowIsRefused) {
  Snapshot snapshot = Keyspace("/weft").document({{"/weft/state/routers/r1", "{}"}}, 3);
  EXPECT_NE(snapshot.refused.find("etcd key /weft/state/routers/r1: not a key of weft's"),
            std::string::npos)
      << snapshot.refused;
}

} // namespace
} // namespace weft::test
