/* wbench_net: the traffic tools of bench/neutron_compare.py, for what Debian 12
 * has no package of (netperf is not in main).
 *
 *   wbench_net server PORT            TCP echo server (epoll): echoes what it reads,
 *                                     closes when the peer does; serves rr and crr
 *   wbench_net rr HOST PORT SECONDS   TCP request/response on one connection, 1 byte
 *                                     each way (netperf TCP_RR)
 *   wbench_net crr HOST PORT SECONDS  a new connection per 1-byte request/response,
 *                                     closed by the client (netperf TCP_CRR)
 *   wbench_net udp-sink PORT SECONDS  counts datagrams until SECONDS pass or the
 *                                     stream has been idle for 0.5 s after starting
 *   wbench_net udp-blast HOST PORT SECONDS SIZE
 *                                     sends SIZE-byte datagrams as fast as sendmmsg can
 *
 * Clients and the sink print one JSON object on stdout; a client that cannot
 * reach its server within 2 s exits 1 (the caller records the mode as not
 * passing traffic). Every command ends itself: an alarm fires SECONDS + 10 s
 * after the start. Only IPv4. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char* what) {
  fprintf(stderr, "wbench_net: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct sockaddr_in address(const char* host, const char* port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(port));
  if (host && inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "wbench_net: not an IPv4 address: %s\n", host);
    exit(2);
  }
  return sa;
}

static void timeouts(int fd, int seconds) {
  struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int connect_to(const struct sockaddr_in* sa) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (fd < 0)
    die("socket");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeouts(fd, 2);
  if (connect(fd, (const struct sockaddr*)sa, sizeof(*sa)) < 0)
    die("connect");
  return fd;
}

/* One byte there, one byte back. */
static void transact(int fd) {
  char b = 'x';
  if (send(fd, &b, 1, 0) != 1)
    die("send");
  if (recv(fd, &b, 1, 0) != 1)
    die("recv");
}

static _Noreturn void serve(const char* port) {
  struct sockaddr_in sa = address(NULL, port);
  int one = 1;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (lfd < 0)
    die("socket");
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(lfd, (struct sockaddr*)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0)
    die("bind/listen");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
    die("epoll");
  printf("ready\n");
  fflush(stdout);
  struct epoll_event events[64];
  char buf[4096];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r > 0) {
        if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
          close(fd);
      } else if (r == 0 || errno != EAGAIN) {
        close(fd); /* also leaves the epoll set */
      }
    }
  }
}

static int rr(const char* host, const char* port, double seconds) {
  struct sockaddr_in sa = address(host, port);
  int fd = connect_to(&sa);
  transact(fd); /* warm: ARP, conntrack, caches */
  long n = 0;
  double start = now(), end = start + seconds, t = start;
  while (t < end) {
    transact(fd);
    n++;
    if ((n & 63) == 0)
      t = now();
  }
  t = now();
  close(fd);
  printf("{\"transactions\": %ld, \"seconds\": %.6f, \"rate\": %.1f}\n", n, t - start,
         (double)n / (t - start));
  return 0;
}

static int crr(const char* host, const char* port, double seconds) {
  struct sockaddr_in sa = address(host, port);
  int fd = connect_to(&sa);
  transact(fd); /* warm */
  close(fd);
  long n = 0;
  double start = now(), end = start + seconds, t = start;
  while (t < end) {
    fd = connect_to(&sa);
    transact(fd);
    close(fd);
    n++;
    if ((n & 15) == 0)
      t = now();
  }
  t = now();
  printf("{\"connections\": %ld, \"seconds\": %.6f, \"rate\": %.1f}\n", n, t - start,
         (double)n / (t - start));
  return 0;
}

#define BATCH 64

static int udp_sink(const char* port, double seconds) {
  struct sockaddr_in sa = address(NULL, port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int size = 4 << 20;
  if (fd < 0)
    die("socket");
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (bind(fd, (struct sockaddr*)&sa, sizeof(sa)) < 0)
    die("bind");
  struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  printf("ready\n");
  fflush(stdout);
  static char bufs[BATCH][2048];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = sizeof(bufs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long count = 0;
  double start = now(), first = 0, last = 0;
  for (;;) {
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    double t = now();
    if (n > 0) {
      if (count == 0)
        first = t;
      count += n;
      last = t;
    } else if (errno != EAGAIN && errno != EINTR) {
      die("recvmmsg");
    }
    if (t - start > seconds || (count > 0 && t - last > 0.5))
      break;
  }
  double span = last - first;
  printf("{\"packets\": %ld, \"seconds\": %.6f, \"pps\": %.1f}\n", count, span,
         span > 0 ? (double)count / span : 0.0);
  return count > 0 ? 0 : 1;
}

static int udp_blast(const char* host, const char* port, double seconds, int size) {
  struct sockaddr_in sa = address(host, port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&sa, sizeof(sa)) < 0)
    die("udp socket");
  static char payload[2048];
  if (size < 1 || size > (int)sizeof(payload))
    size = 64;
  struct iovec iov = {.iov_base = payload, .iov_len = (size_t)size};
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long sent = 0;
  double start = now(), end = start + seconds, t = start;
  while (t < end) {
    int n = sendmmsg(fd, msgs, BATCH, 0);
    if (n > 0)
      sent += n;
    else if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR)
      die("sendmmsg");
    t = now();
  }
  printf("{\"sent\": %ld, \"seconds\": %.6f}\n", sent, t - start);
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: wbench_net server PORT | rr HOST PORT SECONDS | crr HOST PORT SECONDS\n"
                  "       | udp-sink PORT SECONDS | udp-blast HOST PORT SECONDS SIZE\n");
  exit(2);
}

int main(int argc, char** argv) {
  if (argc < 3)
    usage();
  const char* cmd = argv[1];
  signal(SIGPIPE, SIG_IGN);
  if (!strcmp(cmd, "server"))
    serve(argv[2]);
  if (!strcmp(cmd, "udp-sink") && argc == 4) {
    alarm((unsigned)atof(argv[3]) + 10);
    return udp_sink(argv[2], atof(argv[3]));
  }
  if (argc < 5)
    usage();
  double seconds = atof(argv[4]);
  alarm((unsigned)seconds + 10);
  if (!strcmp(cmd, "rr"))
    return rr(argv[2], argv[3], seconds);
  if (!strcmp(cmd, "crr"))
    return crr(argv[2], argv[3], seconds);
  if (!strcmp(cmd, "udp-blast") && argc == 6)
    return udp_blast(argv[2], argv[3], seconds, atoi(argv[5]));
  usage();
  return 2;
}
