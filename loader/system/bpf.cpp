#include "loader/system/bpf.hpp"

#include <algorithm>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <memory>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

namespace weft {

int possible_cpus() {
  static const int cpus = [] {
    int n = libbpf_num_possible_cpus();
    if (n <= 0)
      throw SystemError("count possible CPUs", -n);
    return n;
  }();
  return cpus;
}

std::string map_type_name(std::uint32_t type) {
  switch (type) {
  case BPF_MAP_TYPE_HASH:
    return "hash";
  case BPF_MAP_TYPE_ARRAY:
    return "array";
  case BPF_MAP_TYPE_PERCPU_HASH:
    return "percpu_hash";
  case BPF_MAP_TYPE_PERCPU_ARRAY:
    return "percpu_array";
  case BPF_MAP_TYPE_LPM_TRIE:
    return "lpm_trie";
  case BPF_MAP_TYPE_LRU_HASH:
    return "lru_hash";
  case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    return "lru_percpu_hash";
  default:
    return "type " + std::to_string(type);
  }
}

KernelMap::KernelMap(std::string name, Fd fd) : name_(std::move(name)), fd_(std::move(fd)) {
  bpf_map_info raw{};
  __u32 len = sizeof(raw);
  if (bpf_obj_get_info_by_fd(fd_.get(), &raw, &len) != 0)
    throw SystemError("read info of map " + name_, errno);
  info_ = MapInfo{raw.name,       raw.id,          raw.type,     raw.key_size,
                  raw.value_size, raw.max_entries, raw.map_flags};
}

KernelMap KernelMap::open_pinned(const std::string& name, const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0)
    throw SystemError("open map " + path, errno);
  return KernelMap(name, Fd(fd));
}

static bool is_percpu(std::uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

std::optional<Bytes> KernelMap::lookup(const Bytes& key) const {
  if (is_percpu(info_.type))
    throw std::logic_error("map " + name_ + " is per-CPU: use lookup_percpu");
  Bytes value(info_.value_size);
  if (bpf_map_lookup_elem(fd_.get(), key.data(), value.data()) != 0) {
    if (errno == ENOENT)
      return std::nullopt;
    throw SystemError("look up in map " + name_, errno);
  }
  return value;
}

std::vector<Bytes> KernelMap::lookup_percpu(const Bytes& key) const {
  // The kernel copies per-CPU values rounded up to 8 bytes each.
  std::size_t stride = (info_.value_size + 7) & ~std::size_t{7};
  int cpus = possible_cpus();
  Bytes all(stride * cpus);
  if (bpf_map_lookup_elem(fd_.get(), key.data(), all.data()) != 0) {
    if (errno == ENOENT)
      return {};
    throw SystemError("look up in map " + name_, errno);
  }
  std::vector<Bytes> out;
  for (int cpu = 0; cpu < cpus; ++cpu)
    out.emplace_back(all.begin() + cpu * stride, all.begin() + cpu * stride + info_.value_size);
  return out;
}

std::vector<Bytes> KernelMap::keys() const {
  std::vector<Bytes> out;
  Bytes key(info_.key_size), next(info_.key_size);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd_.get(), prev, next.data()) == 0) {
    out.push_back(next);
    key = next;
    prev = key.data();
  }
  if (errno != ENOENT)
    throw SystemError("iterate map " + name_, errno);
  return out;
}

// BPF_MAP_LOOKUP_BATCH: thousands of entries a syscall instead of two
// syscalls an entry (a 10,000-port node dumps ~27,000 entries per apply).
// nullopt where the map type has no batch operations (LPM tries).
std::optional<std::map<Bytes, Bytes>> KernelMap::dump_batched() const {
  constexpr std::uint32_t kChunk = 4096;
  Bytes keys(std::size_t{kChunk} * info_.key_size), values(std::size_t{kChunk} * info_.value_size);
  // The batch position is opaque: a bucket for hashes, a key for arrays.
  Bytes position(std::max<std::size_t>(info_.key_size, 8)), next(position.size());
  std::map<Bytes, Bytes> out;
  bool first = true;
  for (;;) {
    std::uint32_t count = kChunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd_.get(), first ? nullptr : position.data(), next.data(),
                                   keys.data(), values.data(), &count, &opts);
    int error = err < 0 ? errno : 0;
    if (err < 0 && error != ENOENT) {
      if (first && (error == EINVAL || error == EOPNOTSUPP || error == 524 /* ENOTSUPP */))
        return std::nullopt;
      if (error == ENOSPC) // a bucket larger than a chunk
        return std::nullopt;
      throw SystemError("dump map " + name_, error);
    }
    for (std::uint32_t i = 0; i < count; ++i) {
      auto key = keys.begin() + static_cast<std::ptrdiff_t>(i) * info_.key_size;
      auto value = values.begin() + static_cast<std::ptrdiff_t>(i) * info_.value_size;
      out.emplace(Bytes(key, key + info_.key_size), Bytes(value, value + info_.value_size));
    }
    if (err < 0) // ENOENT: that was the last of them
      return out;
    position = next;
    first = false;
  }
}

std::map<Bytes, Bytes> KernelMap::dump() const {
  if (!is_percpu(info_.type))
    if (auto batched = dump_batched())
      return std::move(*batched);
  std::map<Bytes, Bytes> out;
  for (const auto& key : keys()) {
    if (auto value = lookup(key))
      out.emplace(key, std::move(*value));
  }
  return out;
}

void KernelMap::update(const Bytes& key, const Bytes& value) {
  if (key.size() != info_.key_size || value.size() != info_.value_size)
    throw std::logic_error("map " + name_ + ": entry size does not match the pinned map");
  Bytes all = value;
  if (is_percpu(info_.type)) {
    // Every CPU's copy gets the value, each rounded up to 8 bytes.
    std::size_t stride = (info_.value_size + 7) & ~std::size_t{7};
    all.assign(stride * possible_cpus(), 0);
    for (int cpu = 0; cpu < possible_cpus(); ++cpu)
      std::copy(value.begin(), value.end(), all.begin() + cpu * stride);
  }
  if (bpf_map_update_elem(fd_.get(), key.data(), all.data(), BPF_ANY) != 0)
    throw SystemError("update map " + name_, errno);
}

void KernelMap::erase(const Bytes& key) {
  if (bpf_map_delete_elem(fd_.get(), key.data()) != 0 && errno != ENOENT)
    throw SystemError("delete from map " + name_, errno);
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void ensure_bpffs(const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC)
    return;
  ::mkdir(dir.c_str(), 0700);
  if (::mount("bpf", dir.c_str(), "bpf", 0, "mode=0700") != 0)
    throw SystemError("mount bpffs at " + dir, errno);
}

Fd open_pin(const std::string& path) {
  return Fd(bpf_obj_get(path.c_str()));
}

void pin_object(int fd, const std::string& path) {
  if (bpf_obj_pin(fd, path.c_str()) != 0)
    throw SystemError("pin " + path, errno);
}

std::optional<ProgInfo> prog_info(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
    return std::nullopt;
  static const char* hex = "0123456789abcdef";
  ProgInfo out;
  out.id = info.id;
  for (auto byte : info.tag) {
    out.tag += hex[byte >> 4];
    out.tag += hex[byte & 15];
  }
  return out;
}

void make_pin_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw SystemError("create " + dir, errno);
}

void remove_pin(const std::string& path) {
  if (::unlink(path.c_str()) == 0 || errno == ENOENT)
    return;
  if (errno == EISDIR || errno == EPERM) {
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT)
      return;
  }
  throw SystemError("remove " + path, errno);
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d)
    return out;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name != "." && name != "..")
      out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace weft
