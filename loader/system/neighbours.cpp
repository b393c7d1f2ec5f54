#include "loader/system/neighbours.hpp"

#include <cstring>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loader/model/fd.hpp"

namespace weft {

void probe_neighbours(const std::vector<std::uint32_t>& ipv4_be) {
  if (ipv4_be.empty())
    return;
  Fd sock(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP));
  if (!sock)
    return;
  icmphdr echo{};
  echo.type = ICMP_ECHO;
  echo.un.echo.id = htons(static_cast<std::uint16_t>(::getpid()));
  // RFC 1071: the ones' complement sum of the header's 16-bit words, as they
  // lie in memory (the sum is the same in either byte order).
  std::uint16_t words[sizeof(echo) / 2];
  std::memcpy(words, &echo, sizeof(echo));
  std::uint32_t sum = 0;
  for (auto w : words)
    sum += w;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  echo.checksum = static_cast<std::uint16_t>(~sum);
  for (std::uint32_t ip : ipv4_be) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = ip;
    (void)::sendto(sock.get(), &echo, sizeof(echo), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof(to));
  }
}

} // namespace weft
