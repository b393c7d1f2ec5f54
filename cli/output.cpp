#include "cli/output.hpp"

#include <algorithm>
#include <iostream>

namespace weft::cli {

Column field(std::string title, std::string key) {
  return {std::move(title), [key = std::move(key)](const nlohmann::json& row) {
            return row.contains(key) ? text(row[key]) : std::string("-");
          }};
}

std::string text(const nlohmann::json& value) {
  if (value.is_null())
    return "-";
  if (value.is_string())
    return value.get<std::string>().empty() ? "-" : value.get<std::string>();
  if (value.is_boolean())
    return value.get<bool>() ? "yes" : "no";
  if (value.is_array()) {
    if (value.empty())
      return "-";
    std::string out;
    for (const auto& v : value)
      out += (out.empty() ? "" : ",") + text(v);
    return out;
  }
  if (value.is_object()) {
    std::string out;
    for (const auto& [k, v] : value.items())
      out += (out.empty() ? "" : " ") + k + "=" + text(v);
    return out;
  }
  return value.dump();
}

void print_json(const nlohmann::json& value, const Format& format) {
  std::cout << (format.pretty ? value.dump(2) : value.dump()) << "\n";
}

void print_table(const nlohmann::json& rows, const std::vector<Column>& columns) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> width;
  for (const auto& c : columns)
    width.push_back(c.title.size());
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      line.push_back(columns[i].cell(row));
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto emit = [&](const std::vector<std::string>& line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size())
        out += std::string(width[i] - line[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  std::vector<std::string> titles;
  for (const auto& c : columns)
    titles.push_back(c.title);
  emit(titles);
  for (const auto& line : cells)
    emit(line);
}

void print_rows(const nlohmann::json& rows, const std::vector<Column>& columns,
                const Format& format) {
  if (format.json)
    print_json(rows, format);
  else
    print_table(rows, columns);
}

void print_object(const nlohmann::json& object, const Format& format) {
  if (format.json) {
    print_json(object, format);
    return;
  }
  std::size_t width = 0;
  for (const auto& [k, v] : object.items())
    width = std::max(width, k.size());
  for (const auto& [k, v] : object.items())
    std::cout << k << ":" << std::string(width - k.size() + 1, ' ') << text(v) << "\n";
}

void print_detail(const nlohmann::json& object, const std::string& nested,
                  const nlohmann::json& rows, const std::vector<Column>& columns,
                  const Format& format) {
  if (format.json) {
    print_json(object, format);
    return;
  }
  nlohmann::json summary = object;
  summary.erase(nested);
  print_object(summary, format);
  if (!rows.is_null()) {
    std::cout << "\n";
    print_table(rows, columns);
  }
}

} // namespace weft::cli
