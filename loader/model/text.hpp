// The two character-level helpers that addresses, protocol names and the
// document's fields all need: decimal digits, and ASCII lower case. Internal to
// the model.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace weft::document {

inline bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

inline std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

} // namespace weft::document
