// How the weft command prints: JSON as is (-j, -p), or tables with upper-case
// column titles, decoded values and no hex.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace weft::cli {

struct Format {
  bool json = false;
  bool pretty = false;
};

struct Column {
  std::string title;
  std::function<std::string(const nlohmann::json& row)> cell;
};

// A column that prints field `key` of each row.
Column field(std::string title, std::string key);
// Scalars as text: strings bare, null as "-", arrays joined by ",".
std::string text(const nlohmann::json& value);

void print_json(const nlohmann::json& value, const Format& format);
void print_table(const nlohmann::json& rows, const std::vector<Column>& columns);
// -j: the value as JSON; otherwise the table.
void print_rows(const nlohmann::json& rows, const std::vector<Column>& columns,
                const Format& format);
// `key: value` lines for one object.
void print_object(const nlohmann::json& object, const Format& format);
// -j: `object` as is. Otherwise its fields but `nested`, a blank line, and
// `rows` (the nested list, as rows) as a table.
void print_detail(const nlohmann::json& object, const std::string& nested,
                  const nlohmann::json& rows, const std::vector<Column>& columns,
                  const Format& format);

} // namespace weft::cli
