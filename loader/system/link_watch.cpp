#include "loader/system/link_watch.hpp"

#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <stdexcept>

namespace weft {

namespace {

void collect_name(nl_object* object, void* arg) {
  auto* events = static_cast<LinkEvents*>(arg);
  if (const char* name = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(object)))
    events->devices.insert(name);
}

int on_message(nl_msg* msg, void* arg) {
  int type = nlmsg_hdr(msg)->nlmsg_type;
  if (type == RTM_NEWLINK || type == RTM_DELLINK)
    nl_msg_parse(msg, collect_name, arg);
  return NL_OK;
}

// Announcements carry no sequence numbers of ours.
int no_seq_check(nl_msg* /*msg*/, void* /*arg*/) {
  return NL_OK;
}

} // namespace

LinkWatch::LinkWatch() : sock_(nl_socket_alloc()), cb_(nl_cb_alloc(NL_CB_DEFAULT)) {
  if (!sock_ || !cb_) {
    nl_socket_free(sock_);
    nl_cb_put(cb_);
    throw std::runtime_error("netlink: cannot allocate a socket");
  }
  nl_cb_set(cb_, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, no_seq_check, nullptr);
  int err = nl_connect(sock_, NETLINK_ROUTE);
  if (err >= 0)
    err = nl_socket_add_membership(sock_, RTNLGRP_LINK);
  if (err >= 0)
    err = nl_socket_set_nonblocking(sock_);
  if (err >= 0)
    err = nl_socket_set_buffer_size(sock_, 4 << 20, 0);
  if (err < 0) {
    nl_socket_free(sock_);
    nl_cb_put(cb_);
    throw std::runtime_error(std::string("netlink: watch devices: ") + nl_geterror(err));
  }
}

LinkWatch::~LinkWatch() {
  nl_socket_free(sock_);
  nl_cb_put(cb_);
}

int LinkWatch::fd() const {
  return nl_socket_get_fd(sock_);
}

LinkEvents LinkWatch::read() {
  LinkEvents events;
  events.first = std::chrono::steady_clock::now();
  nl_cb_set(cb_, NL_CB_VALID, NL_CB_CUSTOM, on_message, &events);
  for (;;) {
    // The number of messages read; 0 or -NLE_AGAIN once none wait.
    int err = nl_recvmsgs_report(sock_, cb_);
    if (err == 0 || err == -NLE_AGAIN)
      break;
    if (err == -NLE_NOMEM || err == -NLE_MSG_OVERFLOW) {
      events.overflow = true; // ENOBUFS: the kernel dropped some
      continue;
    }
    if (err < 0)
      throw std::runtime_error(std::string("netlink: read device events: ") + nl_geterror(err));
  }
  return events;
}

} // namespace weft
