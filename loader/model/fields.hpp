// Reading the fields of a JSON document and wording its problems: Problems
// collects "<where>: <field> <what>" lines, Fields reads one object's fields
// with Neutron's conversions and reports every bad value, and the text helpers
// make a document's values safe to print on one line. Internal to the model:
// every resource's parser reads through them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace weft::document {

using json = nlohmann::json;

// A document value as it may appear in a message: control characters escaped
// (one problem is one line), long values cut short.
std::string printable(std::string_view text, std::size_t limit = std::string::npos);
std::string in_quotes(std::string_view text);
std::string kind_of(const json& value);
// A JSON value as it may appear in a message.
std::string shown(const json& value);
std::string range_text(std::int64_t low, std::int64_t high);
std::string indexed(std::string_view list, std::size_t index);
std::string label(std::string_view kind, std::string_view id);

// Collects problems as "<where>: <field> <what>".
class Problems {
public:
  void add(const std::string& where, const std::string& what) {
    list_.push_back(where + ": " + what);
  }
  std::size_t count() const { return list_.size(); }
  std::vector<std::string>& list() { return list_; }

private:
  std::vector<std::string> list_;
};

// Reads the fields of one JSON object, reporting each problem under `where`
// ("port 3f2a…") with the field's path ("fixed_ips[0].ip_address").
class Fields {
public:
  Fields(const json& object, std::string where, std::string path, Problems& problems)
      : object_(object), where_(std::move(where)), path_(std::move(path)), problems_(problems) {}

  const std::string& where() const { return where_; }
  void set_where(std::string where) { where_ = std::move(where); }
  std::string field(std::string_view key) const { return path_ + std::string(key); }

  void problem(std::string_view key, const std::string& what) {
    problems_.add(where_, field(key) + " " + what);
  }

  // The value of `key`; nullptr when absent or null (Neutron's "not set").
  const json* value(std::string_view key) const;

  std::optional<std::string> text(std::string_view key);

  // A string that must be present and non-empty.
  std::optional<std::string> required_text(std::string_view key);

  bool flag(std::string_view key, bool fallback);

  // An integer, given as a JSON number or a decimal string (Neutron's
  // convert_to_int); nullopt when absent, null or invalid (reported).
  std::optional<std::int64_t> integer(std::string_view key);

  // A list; nullptr when absent or null (an empty list) or not a list
  // (reported).
  const json* list(std::string_view key);

private:
  const json& object_;
  std::string where_;
  std::string path_;
  Problems& problems_;
};

} // namespace weft::document
