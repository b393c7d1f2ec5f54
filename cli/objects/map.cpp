// `weft map list|dump`: the pinned maps, decoded.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/datapath/session.hpp"
#include "loader/inspect/inspect.hpp"

using nlohmann::json;

namespace weft::cli {

namespace {

void map_list(const Globals& g) {
  Session session(layout_of(g));
  print_rows(inspect_maps(session),
             {field("NAME", "name"), field("TYPE", "type"), field("ID", "id"),
              field("KEY", "key_size"), field("VALUE", "value_size"), field("ENTRIES", "entries"),
              field("MAX", "max_entries")},
             g.format);
}

void map_dump(const Globals& g, const std::string& name) {
  Session session(layout_of(g));
  print_rows(dump_map(session, name), {field("KEY", "key"), field("VALUE", "value")}, g.format);
}

} // namespace

void register_map(Command& cmd) {
  CLI::App& app = cmd.app;
  const Globals& g = cmd.globals;
  Action& action = cmd.action;
  OptionStore& store = cmd.store;
  auto* map = app.add_subcommand("map", "the pinned maps");
  map->require_subcommand(1);
  for (const char* name : {"list", "show"})
    map->add_subcommand(name, "list maps")->callback([&] { action = [&] { map_list(g); }; });
  auto& map_name = store.add<std::string>();
  auto* dump = map->add_subcommand("dump", "decoded entries of one map");
  dump->add_option("NAME", map_name, "map name (see map list)")->required();
  dump->callback([&] { action = [&] { map_dump(g, map_name); }; });
}

} // namespace weft::cli
