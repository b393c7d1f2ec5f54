#include "loader/agent/etcd_source.hpp"

#include <cerrno>
#include <chrono>
#include <fstream>
#include <grpcpp/grpcpp.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/eventfd.h>

#include "loader/agent/etcd.grpc.pb.h"
#include "loader/model/error.hpp"

using nlohmann::json;

namespace weft {

namespace {

constexpr auto kCallTimeout = std::chrono::seconds(3);

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("etcd: cannot read the " + std::string(what) + " " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void deadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
}

std::string failed(const std::string& call, const grpc::Status& status) {
  return "etcd " + call + ": " + status.error_message() + " (gRPC code " +
         std::to_string(static_cast<int>(status.error_code())) + ")";
}

// Clears the pointer the destructor cancels a call through before the call's
// context goes (declared after the context).
class CallSlot {
public:
  CallSlot(std::mutex& mutex, grpc::ClientContext*& slot) : mutex_(mutex), slot_(slot) {}
  CallSlot(const CallSlot&) = delete;
  CallSlot& operator=(const CallSlot&) = delete;
  ~CallSlot() {
    std::lock_guard lock(mutex_);
    slot_ = nullptr;
  }

private:
  std::mutex& mutex_;
  grpc::ClientContext*& slot_;
};

void log_line(const std::string& line) {
  static const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  std::cerr << (journal ? "<4>" : "") << "weftd: " << line << std::endl;
}

} // namespace

EtcdSource::EtcdSource(EtcdOptions options)
    : options_(std::move(options)), keys_(options_.prefix),
      wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!wake_)
    throw SystemError("eventfd", errno);
  if (options_.endpoints.empty())
    throw std::runtime_error("etcd: no endpoint (--etcd URL)");
  for (const auto& url : options_.endpoints)
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      throw std::runtime_error("etcd: endpoint '" + url +
                               "' is not http://HOST:PORT or https://HOST:PORT");
  if (!options_.ca_file.empty())
    read_file(options_.ca_file, "CA certificate"); // refused now, not in a thread
  watcher_ = std::thread([this] { watch_loop(); });
  leaser_ = std::thread([this] { lease_loop(); });
}

EtcdSource::~EtcdSource() {
  stopping_ = true;
  {
    std::lock_guard lock(mutex_);
    if (watch_call_)
      watch_call_->TryCancel();
    if (lease_call_)
      lease_call_->TryCancel();
  }
  changed_.notify_all();
  watcher_.join();
  leaser_.join();
}

std::string EtcdSource::describe() const {
  std::string urls;
  for (const auto& url : options_.endpoints)
    urls += (urls.empty() ? "" : ",") + url;
  return "etcd " + urls + " prefix " + keys_.prefix();
}

bool EtcdSource::connected() const {
  std::lock_guard lock(mutex_);
  return connected_;
}

std::int64_t EtcdSource::latest_revision() const {
  std::lock_guard lock(mutex_);
  return revision_;
}

std::string EtcdSource::problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

void EtcdSource::wake() {
  std::uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void EtcdSource::set_problem(const std::string& problem) {
  bool news = false;
  {
    std::lock_guard lock(mutex_);
    news = problem_ != problem || connected_ != problem.empty();
    connected_ = problem.empty();
    problem_ = problem;
  }
  if (news) {
    if (!problem.empty())
      log_line(problem + "; the node keeps what it has");
    wake();
  }
}

bool EtcdSource::sleep_for(int ms) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_.load(); });
  return !stopping_;
}

std::optional<Snapshot> EtcdSource::take() {
  std::uint64_t count = 0;
  (void)!::read(wake_.get(), &count, sizeof(count));
  std::map<std::string, std::string> state;
  std::int64_t revision = 0;
  {
    std::lock_guard lock(mutex_);
    if (!fresh_)
      return std::nullopt;
    fresh_ = false;
    state = state_;
    revision = revision_;
  }
  return keys_.document(state, revision);
}

void EtcdSource::report(const std::vector<PortStatus>& ports) {
  {
    std::lock_guard lock(mutex_);
    if (ports == ports_)
      return;
    ports_ = ports;
    ports_dirty_ = true;
  }
  changed_.notify_all();
}

std::shared_ptr<grpc::Channel> EtcdSource::channel() {
  std::string url;
  {
    std::lock_guard lock(mutex_);
    url = options_.endpoints[endpoint_ % options_.endpoints.size()];
  }
  bool tls = url.rfind("https://", 0) == 0;
  std::string target = url.substr(tls ? 8 : 7);
  if (auto slash = target.find('/'); slash != std::string::npos)
    target.resize(slash);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options_.ca_file.empty())
      ssl.pem_root_certs = read_file(options_.ca_file, "CA certificate");
    if (!options_.cert_file.empty())
      ssl.pem_cert_chain = read_file(options_.cert_file, "client certificate");
    if (!options_.key_file.empty())
      ssl.pem_private_key = read_file(options_.key_file, "client key");
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  // A whole state of 10,000 ports is larger than gRPC's default 4 MiB.
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(target, credentials, arguments);
}

// Reads P/state/ whole (or, with `resume`, watches on from `revision`), then
// follows it until the connection or the watch ends. False: read again from
// scratch (etcd compacted past `revision`).
bool EtcdSource::sync(std::int64_t& revision, bool resume) {
  auto link = channel();
  auto kv = etcdserverpb::KV::NewStub(link);
  auto watch = etcdserverpb::Watch::NewStub(link);
  const std::string prefix = keys_.state(), end = range_end(prefix);

  if (!resume) {
    etcdserverpb::RangeRequest request;
    request.set_key(prefix);
    request.set_range_end(end);
    etcdserverpb::RangeResponse response;
    have_state_ = false;
    grpc::ClientContext context;
    deadline(context);
    grpc::Status status = kv->Range(&context, request, &response);
    if (!status.ok())
      throw std::runtime_error(failed("range " + prefix, status));
    std::map<std::string, std::string> state;
    for (const auto& entry : response.kvs())
      state[entry.key()] = entry.value();
    revision = response.header().revision();
    set_problem(""); // before the state is told, so that it comes as connected
    {
      std::lock_guard lock(mutex_);
      state_ = std::move(state);
      revision_ = revision;
      fresh_ = true;
    }
    have_state_ = true;
    wake();
  }
  set_problem("");

  grpc::ClientContext context;
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      return true;
    watch_call_ = &context;
  }
  CallSlot slot(mutex_, watch_call_);
  auto stream = watch->Watch(&context);
  etcdserverpb::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(prefix);
  create->set_range_end(end);
  create->set_start_revision(revision + 1);
  create->set_progress_notify(true);
  stream->Write(request);
  etcdserverpb::WatchResponse response;
  while (stream->Read(&response)) {
    if (response.canceled()) {
      stream->WritesDone();
      context.TryCancel();
      if (response.compact_revision() > 0) {
        log_line("etcd compacted past revision " + std::to_string(revision) +
                 "; reading the state again");
        return false;
      }
      throw std::runtime_error("etcd watch " + prefix + " cancelled: " + response.cancel_reason());
    }
    if (response.events_size() == 0)
      continue; // created, or progress
    {
      std::lock_guard lock(mutex_);
      for (const auto& event : response.events()) {
        if (event.type() == etcdserverpb::Event::DELETE)
          state_.erase(event.kv().key());
        else
          state_[event.kv().key()] = event.kv().value();
      }
      revision = revision_ = response.header().revision();
      fresh_ = true;
    }
    wake();
  }
  grpc::Status status = stream->Finish();
  if (stopping_)
    return true;
  throw std::runtime_error(failed("watch " + prefix, status));
}

void EtcdSource::watch_loop() {
  std::int64_t revision = 0;
  int backoff = 200;
  while (!stopping_) {
    try {
      // Resumed where the last connection stopped, when there was one.
      if (!sync(revision, have_state_))
        have_state_ = false;
      backoff = 200;
    } catch (const std::exception& e) {
      set_problem(e.what());
      {
        std::lock_guard lock(mutex_);
        ++endpoint_;
      }
      if (!sleep_for(backoff))
        return;
      backoff = std::min(backoff * 2, 2000);
    }
  }
}

// The agent's lease and what hangs on it: its announcement; and the ports'
// status, written again whole after every new lease (etcd may have been
// restored, or the keys removed).
void EtcdSource::lease_loop() {
  while (!stopping_) {
    try {
      auto link = channel();
      auto lease = etcdserverpb::Lease::NewStub(link);
      auto kv = etcdserverpb::KV::NewStub(link);
      etcdserverpb::LeaseGrantRequest grant;
      grant.set_ttl(options_.lease_ttl);
      etcdserverpb::LeaseGrantResponse granted;
      {
        grpc::ClientContext context;
        deadline(context);
        grpc::Status status = lease->LeaseGrant(&context, grant, &granted);
        if (!status.ok())
          throw std::runtime_error(failed("lease grant", status));
      }
      auto put = [&](const std::string& key, const std::string& value, std::int64_t id) {
        etcdserverpb::PutRequest request;
        request.set_key(key);
        request.set_value(value);
        request.set_lease(id);
        etcdserverpb::PutResponse response;
        grpc::ClientContext context;
        deadline(context);
        grpc::Status status = kv->Put(&context, request, &response);
        if (!status.ok())
          throw std::runtime_error(failed("put " + key, status));
      };
      // Status writes go in transactions of up to 128 operations (etcd's
      // default limit): a node's thousands of ports are a few commits.
      etcdserverpb::TxnRequest txn;
      auto flush = [&] {
        if (txn.success_size() == 0)
          return;
        etcdserverpb::TxnResponse response;
        grpc::ClientContext context;
        deadline(context);
        grpc::Status status = kv->Txn(&context, txn, &response);
        if (!status.ok())
          throw std::runtime_error(failed("write the ports' status", status));
        txn.Clear();
      };
      auto put_status = [&](const std::string& key, const std::string& value) {
        auto* op = txn.add_success()->mutable_request_put();
        op->set_key(key);
        op->set_value(value);
        if (txn.success_size() == 128)
          flush();
      };
      auto erase_status = [&](const std::string& key) {
        txn.add_success()->mutable_request_delete_range()->set_key(key);
        if (txn.success_size() == 128)
          flush();
      };
      put(keys_.agent(options_.host), options_.announcement, granted.id());

      grpc::ClientContext context;
      {
        std::lock_guard lock(mutex_);
        if (stopping_)
          return;
        lease_call_ = &context;
      }
      CallSlot slot(mutex_, lease_call_);
      auto keepalive = lease->LeaseKeepAlive(&context);
      std::map<std::string, PortStatus> written; // port id → as written
      bool rewrite = true;
      auto next_keepalive = std::chrono::steady_clock::now();
      while (!stopping_) {
        if (std::chrono::steady_clock::now() >= next_keepalive) {
          etcdserverpb::LeaseKeepAliveRequest ping;
          ping.set_id(granted.id());
          etcdserverpb::LeaseKeepAliveResponse pong;
          if (!keepalive->Write(ping) || !keepalive->Read(&pong))
            break;
          if (pong.ttl() <= 0) {
            log_line("etcd: the agent's lease expired; announcing again");
            break;
          }
          next_keepalive = std::chrono::steady_clock::now() +
                           std::chrono::milliseconds(options_.lease_ttl * 1000 / 3);
        }
        std::vector<PortStatus> ports;
        bool dirty = false;
        {
          std::unique_lock lock(mutex_);
          changed_.wait_until(lock, next_keepalive, [this] { return stopping_ || ports_dirty_; });
          dirty = ports_dirty_ || rewrite;
          ports_dirty_ = false;
          ports = ports_;
        }
        if (!dirty || stopping_)
          continue;
        std::map<std::string, PortStatus> now;
        for (const auto& port : ports)
          now[port.port_id] = port;
        for (const auto& [id, port] : now)
          if (auto it = written.find(id); rewrite || it == written.end() || !(it->second == port))
            put_status(
                keys_.status(options_.host, id),
                json{{"status", port.up ? "ACTIVE" : "DOWN"}, {"device", port.device}}.dump());
        for (const auto& [id, port] : written)
          if (!now.count(id))
            erase_status(keys_.status(options_.host, id));
        flush();
        written = std::move(now);
        rewrite = false;
      }
      keepalive->WritesDone();
      context.TryCancel();
      keepalive->Finish();
    } catch (const std::exception& e) {
      log_line(e.what());
    }
    if (!sleep_for(500))
      return;
  }
}

} // namespace weft
