// The generic map layer under the domain code: a map is a set of byte-string
// keys and values. The kernel implementation is KernelMap (bpf.hpp); unit
// tests use an in-memory fake. Typed access goes through Map<Key, Value>.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace weft {

using Bytes = std::vector<std::uint8_t>;

template <class T> Bytes to_bytes(const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  Bytes out(sizeof(T));
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}

template <class T> T from_bytes(const Bytes& bytes) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (bytes.size() < sizeof(T))
    throw std::runtime_error("map entry of " + std::to_string(bytes.size()) +
                             " bytes is shorter than expected " + std::to_string(sizeof(T)));
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

class MapIo {
public:
  virtual ~MapIo() = default;
  virtual const std::string& name() const = 0;
  virtual std::optional<Bytes> lookup(const Bytes& key) const = 0;
  virtual std::map<Bytes, Bytes> dump() const = 0;
  virtual std::vector<Bytes> keys() const = 0;
  virtual void update(const Bytes& key, const Bytes& value) = 0;
  virtual void erase(const Bytes& key) = 0;
};

// Typed view over a MapIo. Key and Value are the ABI structs of maps/weft_abi.h.
template <class Key, class Value> class Map {
  static_assert(std::is_trivially_copyable_v<Key> && std::is_trivially_copyable_v<Value>);

public:
  explicit Map(MapIo& io) : io_(io) {}

  std::optional<Value> get(const Key& key) const {
    auto raw = io_.lookup(to_bytes(key));
    if (!raw)
      return std::nullopt;
    return from_bytes<Value>(*raw);
  }
  void put(const Key& key, const Value& value) { io_.update(to_bytes(key), to_bytes(value)); }
  void erase(const Key& key) { io_.erase(to_bytes(key)); }
  std::vector<std::pair<Key, Value>> entries() const {
    std::vector<std::pair<Key, Value>> out;
    for (const auto& [k, v] : io_.dump())
      out.emplace_back(from_bytes<Key>(k), from_bytes<Value>(v));
    return out;
  }

private:
  MapIo& io_;
};

// What the kernel refuses of a map: keys and values of another size, and a
// new entry beyond max_entries (0: no limit, as on the "desired" side).
struct MapLimits {
  std::size_t key_size = 0;
  std::size_t value_size = 0;
  std::size_t max_entries = 0;
};

// An in-memory map: the fake for domain tests, and the "desired" side of a diff.
class MemoryMap : public MapIo {
public:
  explicit MemoryMap(std::string name, MapLimits limits = {})
      : name_(std::move(name)), limits_(limits) {}
  const std::string& name() const override { return name_; }
  std::optional<Bytes> lookup(const Bytes& key) const override {
    auto it = entries_.find(key);
    if (it == entries_.end())
      return std::nullopt;
    return it->second;
  }
  std::map<Bytes, Bytes> dump() const override { return entries_; }
  std::vector<Bytes> keys() const override {
    std::vector<Bytes> out;
    for (const auto& [key, value] : entries_)
      out.push_back(key);
    return out;
  }
  void update(const Bytes& key, const Bytes& value) override {
    if (limits_.key_size && (key.size() != limits_.key_size || value.size() != limits_.value_size))
      throw std::invalid_argument("map " + name_ + ": entry of " + std::to_string(key.size()) +
                                  "+" + std::to_string(value.size()) + " bytes, not " +
                                  std::to_string(limits_.key_size) + "+" +
                                  std::to_string(limits_.value_size));
    if (limits_.max_entries && !entries_.count(key) && entries_.size() >= limits_.max_entries)
      throw std::length_error("map " + name_ + " is full (" + std::to_string(limits_.max_entries) +
                              " entries)");
    entries_[key] = value;
    ++writes_;
  }
  void erase(const Bytes& key) override {
    entries_.erase(key);
    ++writes_;
  }
  // Writes since construction: tests check that reconcile writes only changes.
  int writes() const { return writes_; }

private:
  std::string name_;
  MapLimits limits_;
  std::map<Bytes, Bytes> entries_;
  int writes_ = 0;
};

} // namespace weft
