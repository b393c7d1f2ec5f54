// The JSON field reader and the wording of problems. Every value is
// type-checked before it is read, so that a wrong JSON type anywhere in a
// document is a problem naming its field, never an exception from the library.
#include "loader/model/fields.hpp"

#include <charconv>
#include <cstdio>
#include <limits>
#include <system_error>

#include "loader/model/text.hpp"

namespace weft::document {

std::string printable(std::string_view text, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (out.size() >= limit && (c & 0xc0) != 0x80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string in_quotes(std::string_view text) {
  return "'" + printable(text, 64) + "'";
}

std::string kind_of(const json& value) {
  switch (value.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return "a boolean";
  case json::value_t::string:
    return "a string";
  case json::value_t::array:
    return "a list";
  case json::value_t::object:
    return "an object";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
  case json::value_t::number_float:
    return "a number";
  default:
    return "an unsupported value";
  }
}

std::string shown(const json& value) {
  if (value.is_string())
    return in_quotes(value.get_ref<const std::string&>());
  if (value.is_number() || value.is_boolean() || value.is_null())
    return value.dump();
  return kind_of(value);
}

std::string range_text(std::int64_t low, std::int64_t high) {
  return "(" + std::to_string(low) + ".." + std::to_string(high) + ")";
}

std::string indexed(std::string_view list, std::size_t index) {
  return std::string(list) + "[" + std::to_string(index) + "]";
}

std::string label(std::string_view kind, std::string_view id) {
  return std::string(kind) + " " + printable(id);
}

const json* Fields::value(std::string_view key) const {
  auto it = object_.find(std::string(key));
  if (it == object_.end() || it->is_null())
    return nullptr;
  return &*it;
}

std::optional<std::string> Fields::text(std::string_view key) {
  const json* found = value(key);
  if (found == nullptr)
    return std::nullopt;
  if (!found->is_string()) {
    problem(key, "must be a string, not " + kind_of(*found));
    return std::nullopt;
  }
  return found->get<std::string>();
}

std::optional<std::string> Fields::required_text(std::string_view key) {
  const json* found = value(key);
  if (found == nullptr) {
    problem(key, "is missing");
    return std::nullopt;
  }
  auto result = text(key);
  if (result && result->empty()) {
    problem(key, "is empty");
    return std::nullopt;
  }
  return result;
}

bool Fields::flag(std::string_view key, bool fallback) {
  const json* found = value(key);
  if (found == nullptr)
    return fallback;
  if (found->is_boolean())
    return found->get<bool>();
  // Neutron's convert_to_boolean also takes the strings.
  if (found->is_string()) {
    std::string word = lower(found->get_ref<const std::string&>());
    if (word == "true")
      return true;
    if (word == "false")
      return false;
  }
  problem(key, "must be true or false, not " + shown(*found));
  return fallback;
}

std::optional<std::int64_t> Fields::integer(std::string_view key) {
  const json* found = value(key);
  if (found == nullptr)
    return std::nullopt;
  if (found->is_number_unsigned()) {
    auto number = found->get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      problem(key, found->dump() + " is out of range");
      return std::nullopt;
    }
    return static_cast<std::int64_t>(number);
  }
  if (found->is_number_integer())
    return found->get<std::int64_t>();
  if (found->is_string()) {
    const auto& digits = found->get_ref<const std::string&>();
    std::int64_t number = 0;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
    if (!digits.empty() && error == std::errc() && end == digits.data() + digits.size())
      return number;
    if (error == std::errc::result_out_of_range) {
      problem(key, in_quotes(digits) + " is out of range");
      return std::nullopt;
    }
    problem(key, in_quotes(digits) + " is not an integer");
    return std::nullopt;
  }
  problem(key, "must be an integer, not " + shown(*found));
  return std::nullopt;
}

const json* Fields::list(std::string_view key) {
  const json* found = value(key);
  if (found == nullptr)
    return nullptr;
  if (!found->is_array()) {
    problem(key, "must be a list, not " + kind_of(*found));
    return nullptr;
  }
  return found;
}

} // namespace weft::document
