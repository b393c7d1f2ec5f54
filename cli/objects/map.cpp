// `weft map list|dump`: the pinned maps, decoded.
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "loader/inspect/inspect.hpp"

namespace weft::cli {

void register_map(Command& cmd) {
  CLI::App* map = cmd.object("map", "the pinned maps");
  cmd.list(map, "list maps", inspect_maps,
           {field("NAME", "name"), field("TYPE", "type"), field("ID", "id"),
            field("KEY", "key_size"), field("VALUE", "value_size"), field("ENTRIES", "entries"),
            field("MAX", "max_entries")});
  auto& name = cmd.store.add<std::string>();
  cmd.verb(map, "dump", "decoded entries of one map",
           [&g = cmd.globals, &name] {
             Session session(layout_of(g));
             print_rows(dump_map(session, name), {field("KEY", "key"), field("VALUE", "value")},
                        g.format);
           })
      ->add_option("NAME", name, "map name (see map list)")
      ->required();
}

} // namespace weft::cli
