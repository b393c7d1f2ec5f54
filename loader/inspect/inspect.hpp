// What `weft … list/show/dump` report, as JSON: the CLI prints it as is with
// -j, or as a table. Every value decoded; the maps are read, not the record,
// wherever the datapath's own view is what matters.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "loader/datapath/session.hpp"

namespace weft {

nlohmann::json inspect_node(Session& session);
nlohmann::json inspect_networks(Session& session);
nlohmann::json inspect_ports(Session& session);
// Throws when no port of the applied document has this id (or id prefix).
nlohmann::json inspect_port(Session& session, const std::string& id);
// Every entry of the forwarding table: local ones with their port and
// device, remote ones with the VTEP (and node) they live behind.
nlohmann::json inspect_fdb(Session& session);
// The other nodes' VTEPs this node accepts and sends to: their node, the
// networks this node floods to them, the ports behind them, counters.
nlohmann::json inspect_vteps(Session& session);
// One network (id, unique prefix or name): its segment as the datapath has
// it, its ports here, where its broadcasts go.
nlohmann::json inspect_network(Session& session, const std::string& id);
nlohmann::json inspect_maps(Session& session);
nlohmann::json dump_map(Session& session, const std::string& name);
nlohmann::json inspect_progs(Session& session);
// Rows of (port, device, reason, packets, bytes); port_id filters when set.
nlohmann::json inspect_stats(Session& session, const std::string& port_id = "");
// Security groups of the applied document: rules decoded, ports using them.
nlohmann::json inspect_groups(Session& session);
nlohmann::json inspect_group(Session& session, const std::string& id);
// Conntrack entries, decoded; filters (port id or network id, or a prefix)
// apply when set.
nlohmann::json inspect_ct(Session& session, const std::string& port_id = "",
                          const std::string& network_id = "");
// Deletes conntrack entries (those of one port when port_id is set); returns how many.
std::size_t flush_ct(Session& session, const std::string& port_id = "");
// A plan in words (for --dry-run and the summary of an apply).
nlohmann::json describe_plan(const Plan& plan);

} // namespace weft
