"""weftlab: the harness of weft's end-to-end tests (DESIGN.md section 7).

A lab is one weft node in a network namespace of its own, plus one namespace
per VM. A VM's eth0 is the peer of a veth pair whose host end sits in the node
namespace under the port's device name, exactly what Nova's libvirt driver
would create. The namespaces and VMs are made by `weft lab plug` from a
topology (loader/lab/topology.hpp), the same code that builds the demo lab,
and the device names come from weft: nothing here derives them. The `weft` binary
(env WEFT, default build/weft) runs against the node with --netns, --node and
a private --state-dir, so several labs, and other people's nodes, can share the
kernel without seeing each other.

Traffic is only ever sent between namespaces a lab created. Frames are built
here byte by byte and sent from a VM with an AF_PACKET socket; the receiving
VM captures with another AF_PACKET socket for a short window, so a test can
assert that a frame arrived and, as importantly, that it did not. The socket
work runs in a small agent (this file, run as a script) started inside the VM
namespace with `ip netns exec`.

Everything a lab creates is registered the moment it exists and removed by
Lab.destroy(), which tests call through addCleanup/addClassCleanup; an atexit
hook and a SIGTERM handler (ctest's timeout) catch the rest.

Standard library only.
"""

import atexit
import ipaddress
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WEFT = os.environ.get("WEFT") or os.path.join(REPO, "build", "weft")
BPFFS = "/sys/fs/bpf"
PREFIX = "wefte2e%d-" % os.getpid()
PYTHON = sys.executable or "python3"

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
PACKET_OUTGOING = 4
BROADCAST = "ff:ff:ff:ff:ff:ff"


def require_root():
    """The e2e level needs root; without it the test fails, it never skips."""
    if os.geteuid() != 0:
        raise AssertionError("weft's e2e tests need root (network namespaces, BPF): "
                             "run them as root. They fail rather than skip.")
    if not os.access(WEFT, os.X_OK):
        raise AssertionError("the weft binary %s is missing: build it or set WEFT" % WEFT)


# --- shell --------------------------------------------------------------------


class CommandError(RuntimeError):
    pass


def run(cmd, check=True, input=None, timeout=30):
    """Runs argv; returns CompletedProcess with text stdout/stderr."""
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise CommandError("%s: exit %d\nstdout: %s\nstderr: %s" %
                           (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns] + list(cmd)


# --- frames -------------------------------------------------------------------


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", "").replace("-", ""))


def mac_str(raw):
    return ":".join("%02x" % b for b in raw)


def ip4_bytes(ip):
    return ipaddress.IPv4Address(ip).packed


def ip6_bytes(ip):
    return ipaddress.IPv6Address(ip).packed


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def new_token():
    """A marker carried in a frame's payload, so a capture can recognise it."""
    return b"WEFTE2E-" + uuid.uuid4().hex[:12].encode()


def ping_pattern():
    """A marker for ping -p (at most 16 bytes; ping repeats it over the payload)."""
    return b"WEFT" + uuid.uuid4().bytes[:8]


def eth(dst, src, ethertype, payload, vlan=None):
    header = mac_bytes(dst) + mac_bytes(src)
    if vlan is not None:
        header += struct.pack("!HH", ETH_P_8021Q, vlan & 0x0FFF)
    frame = header + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def ipv4(src, dst, proto, payload, ttl=64, ident=0x1234, frag=0x4000):
    """An IPv4 header before `payload`; `frag` is the flags and fragment
    offset word (default DF), so a test can build fragments."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, ttl,
                         proto, 0, ip4_bytes(src), ip4_bytes(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def udp4(src, dst, sport, dport, data):
    length = 8 + len(data)
    pseudo = ip4_bytes(src) + ip4_bytes(dst) + struct.pack("!BBH", 0, 17, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = checksum(pseudo + header + data) or 0xFFFF
    return ipv4(src, dst, 17, header[:6] + struct.pack("!H", csum) + data)


def tcp4_segment(src, dst, sport, dport, flags, data=b"", seq=1, ack=0, window=8192):
    """A TCP segment (header and data, no IP header) with any flag combination."""
    pseudo = ip4_bytes(src) + ip4_bytes(dst) + struct.pack("!BBH", 0, 6, 20 + len(data))
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0)
    csum = checksum(pseudo + header + data)
    return header[:16] + struct.pack("!H", csum) + header[18:] + data


def tcp4(src, dst, sport, dport, flags, data=b"", seq=1, ack=0):
    """An IPv4 packet carrying a TCP segment with the given flag byte."""
    return ipv4(src, dst, 6, tcp4_segment(src, dst, sport, dport, flags, data, seq, ack))


def udp4_datagram(src, dst, sport, dport, data):
    """A UDP header and data with its checksum, without the IP header (to fragment)."""
    length = 8 + len(data)
    pseudo = ip4_bytes(src) + ip4_bytes(dst) + struct.pack("!BBH", 0, 17, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = checksum(pseudo + header + data) or 0xFFFF
    return header[:6] + struct.pack("!H", csum) + data


def ipv4_fragments(src, dst, proto, l4, size, ident=0x4242):
    """`l4` (a transport header and data) split into IPv4 fragments of `size`
    bytes (a multiple of 8) each: the first has the transport header, the
    later ones none."""
    pieces = [l4[i:i + size] for i in range(0, len(l4), size)]
    out = []
    for index, piece in enumerate(pieces):
        more = 0x2000 if index < len(pieces) - 1 else 0
        out.append(ipv4(src, dst, proto, piece, ident=ident, frag=more | (index * size // 8)))
    return out


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_init(sport, dport, data=b"", tag=0x5745F700):
    """An SCTP packet (RFC 9260) with one INIT chunk; `data` rides in an
    unrecognised optional parameter (type 0x8005: skip it, report nothing),
    so a capture can recognise the packet."""
    params = b""
    if data:
        length = 4 + len(data)
        params = struct.pack("!HH", 0x8005, length) + data + b"\0" * (-length % 4)
    chunk_body = struct.pack("!IIHHI", tag, 65535, 1, 1, tag) + params
    chunk = struct.pack("!BBH", 1, 0, 4 + len(chunk_body)) + chunk_body
    common = struct.pack("!HHII", sport, dport, 0, 0)
    packet = common + chunk
    return packet[:8] + struct.pack("<I", crc32c(packet)) + packet[12:]


def icmp4_error(src, dst, icmp_type, code, quoted):
    """An ICMP error (e.g. 3/3 port unreachable) quoting `quoted`, the IP
    packet it reports on."""
    body = struct.pack("!BBHI", icmp_type, code, 0, 0) + quoted
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def udp6(src, dst, sport, dport, data, hop_limit=64):
    length = 8 + len(data)
    pseudo = ip6_bytes(src) + ip6_bytes(dst) + struct.pack("!I3xB", length, 17)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = checksum(pseudo + header + data) or 0xFFFF
    message = header[:6] + struct.pack("!H", csum) + data
    return struct.pack("!IHBB16s16s", 6 << 28, length, 17, hop_limit, ip6_bytes(src),
                       ip6_bytes(dst)) + message


def neighbour_advert_body(target, mac, data=b"", flags=0x60000000):
    """An NA's body (flags: solicited|override by default, the target, a
    target link-layer address option), then `data`."""
    return struct.pack("!I16s", flags, ip6_bytes(target)) + bytes([2, 1]) + mac_bytes(mac) + data


def icmp4_echo(src, dst, data, ident=0x7765, seq=1):
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def arp(op, sha, spa, tha, tpa, trailer=b""):
    """An Ethernet/IPv4 ARP message (op 1 request, 2 reply), then `trailer`."""
    return struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op) + mac_bytes(sha) + ip4_bytes(spa) + \
        mac_bytes(tha) + ip4_bytes(tpa) + trailer


def icmp6(src, dst, icmp_type, code, body, hop_limit=255):
    length = 4 + len(body)
    pseudo = ip6_bytes(src) + ip6_bytes(dst) + struct.pack("!I3xB", length, 58)
    message = struct.pack("!BBH", icmp_type, code, 0) + body
    message = message[:2] + struct.pack("!H", checksum(pseudo + message)) + message[4:]
    header = struct.pack("!IHBB16s16s", 6 << 28, length, 58, hop_limit, ip6_bytes(src),
                         ip6_bytes(dst))
    return header + message


def router_advert_body(data):
    # cur hop limit, flags, router lifetime, reachable time, retrans timer; then
    # the payload as an unknown option-free tail (the token).
    return struct.pack("!BBHII", 64, 0, 1800, 0, 0) + data


def link_local(mac):
    raw = bytearray(mac_bytes(mac))
    raw[0] ^= 2
    eui = bytes(raw[:3]) + b"\xff\xfe" + bytes(raw[3:])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + eui))


class Frame:
    """A parsed view of a captured frame (VLAN tags skipped)."""

    def __init__(self, raw, vlan=None):
        self.raw = raw
        self.vlan = vlan
        self.dst = mac_str(raw[0:6])
        self.src = mac_str(raw[6:12])
        offset = 12
        (ethertype,) = struct.unpack("!H", raw[offset:offset + 2])
        while ethertype in (ETH_P_8021Q, 0x88A8) and len(raw) >= offset + 6:
            offset += 4
            (ethertype,) = struct.unpack("!H", raw[offset:offset + 2])
        self.ethertype = ethertype
        self.l3 = raw[offset + 2:]

    def contains(self, token):
        return token in self.raw

    def arp(self):
        """(op, sha, spa, tha, tpa) of an ARP frame, else None."""
        if self.ethertype != ETH_P_ARP or len(self.l3) < 28:
            return None
        op = struct.unpack("!H", self.l3[6:8])[0]
        return (op, mac_str(self.l3[8:14]), str(ipaddress.IPv4Address(self.l3[14:18])),
                mac_str(self.l3[18:24]), str(ipaddress.IPv4Address(self.l3[24:28])))

    def __repr__(self):
        return "Frame(%s > %s type 0x%04x vlan %s, %d bytes)" % (
            self.src, self.dst, self.ethertype, self.vlan, len(self.raw))


# --- the agent: runs inside a VM namespace -------------------------------------


def _agent_capture(iface, until):
    """Captures on iface from READY until told "STOP <seconds>" on stdin, plus
    those seconds (so the window counts from when the frames were sent), or
    until a frame holds the `until` token."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    # PACKET_AUXDATA: a VLAN tag the kernel moved out of the frame.
    sock.setsockopt(263, 8, 1)
    sock.bind((iface, 0))
    sock.setblocking(False)
    while True:  # frames queued before bind() are not ours to judge
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    until = bytes.fromhex(until) if until else None
    frames = []
    deadline = time.monotonic() + 60  # a parent that never says STOP
    inputs = [sock, sys.stdin]
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(inputs, [], [], left)
        if sys.stdin in ready:
            line = sys.stdin.readline().split()
            linger = float(line[1]) if len(line) > 1 and line[0] == "STOP" else 0.0
            deadline = min(deadline, time.monotonic() + linger)
            inputs = [sock]
        if sock not in ready:
            continue
        data, ancdata, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(64))
        if addr[2] == PACKET_OUTGOING:
            continue
        vlan = None
        for level, kind, blob in ancdata:
            if level == 263 and kind == 8 and len(blob) >= 20:
                # struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
                status, _, _, _, _, tci, _ = struct.unpack("IIIHHHH", blob[:20])
                if status & (1 << 4):  # TP_STATUS_VLAN_VALID
                    vlan = tci & 0x0FFF
        frames.append({"hex": data.hex(), "vlan": vlan})
        if until and until in data:
            break
    sys.stdout.write(json.dumps(frames) + "\n")


def _agent_send(iface, frames):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    for frame in frames:
        sock.send(bytes.fromhex(frame))
    sys.stdout.write("SENT %d\n" % len(frames))


def _agent_serve(port, name):
    """TCP and UDP echo on `port`, each reply prefixed with `name:`, until
    stdin closes."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    prefix = name.encode() + b":"
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    while True:
        ready, _, _ = select.select([tcp, udp, sys.stdin], [], [])
        if sys.stdin in ready and not sys.stdin.readline():
            return
        if udp in ready:
            data, peer = udp.recvfrom(65535)
            udp.sendto(prefix + data, peer)
        if tcp in ready:
            conn, _ = tcp.accept()
            conn.settimeout(2)
            try:
                conn.sendall(prefix + conn.recv(65535))
            except OSError:
                pass
            conn.close()


def _agent_connect(proto, ip, port, data, timeout):
    """Sends `data` over TCP or UDP and prints the reply; exit 1 without one."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.settimeout(timeout)
    try:
        sock.connect((ip, port))
        sock.send(data.encode())
        reply = sock.recv(65535)
    except OSError as error:
        sys.stdout.write("ERROR %s\n" % error)
        raise SystemExit(1)
    sys.stdout.write(reply.decode(errors="replace") + "\n")


def _agent_stream_serve(port):
    """One long-lived TCP echo: every line a client sends comes back, over the
    same connection, until stdin closes."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(8)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    conns = []
    while True:
        ready, _, _ = select.select([tcp, sys.stdin] + conns, [], [])
        if sys.stdin in ready and not sys.stdin.readline():
            return
        if tcp in ready:
            conn, peer = tcp.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns.append(conn)
            sys.stdout.write("ACCEPTED %s:%d\n" % peer)
            sys.stdout.flush()
        for conn in [c for c in conns if c in ready]:
            try:
                data = conn.recv(65535)
            except OSError:
                data = b""
            if not data:
                conns.remove(conn)
                conn.close()
                continue
            conn.sendall(data)


def _agent_stream_client(ip, port, interval):
    """Connects once and sends a numbered line every `interval` seconds; prints
    "ECHO n" for every line that comes back, until stdin closes. The
    connection is never re-opened: a broken one prints ERROR and exits."""
    sock = socket.create_connection((ip, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    sys.stdout.write("CONNECTED %s:%d\n" % sock.getsockname())
    sys.stdout.flush()
    seq = 0
    pending = b""
    next_send = time.monotonic()
    while True:
        ready, _, _ = select.select([sock, sys.stdin], [], [],
                                    max(0.0, next_send - time.monotonic()))
        if sys.stdin in ready and not sys.stdin.readline():
            sys.stdout.write("SENT %d\n" % seq)
            return
        if sock in ready:
            try:
                data = sock.recv(65535)
            except OSError as error:
                sys.stdout.write("ERROR %s\n" % error)
                raise SystemExit(1)
            if not data:
                sys.stdout.write("ERROR closed by the server\n")
                raise SystemExit(1)
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                sys.stdout.write("ECHO %s\n" % line.decode())
            sys.stdout.flush()
        if time.monotonic() >= next_send:
            seq += 1
            try:
                sock.send(b"%d\n" % seq)
            except BlockingIOError:
                seq -= 1  # the send buffer is full: try again next tick
            except OSError as error:
                sys.stdout.write("ERROR %s\n" % error)
                raise SystemExit(1)
            next_send += interval


def _agent_main(argv):
    if argv[0] == "capture":
        _agent_capture(argv[1], argv[2] if len(argv) > 2 else "")
    elif argv[0] == "send":
        _agent_send(argv[1], argv[2:])
    elif argv[0] == "serve":
        _agent_serve(int(argv[1]), argv[2])
    elif argv[0] == "connect":
        _agent_connect(argv[1], argv[2], int(argv[3]), argv[4], float(argv[5]))
    elif argv[0] == "stream-serve":
        _agent_stream_serve(int(argv[1]))
    elif argv[0] == "stream-client":
        _agent_stream_client(argv[1], int(argv[2]), float(argv[3]))
    else:
        raise SystemExit("weftlab agent: unknown command %r" % argv[0])


# --- the lab ------------------------------------------------------------------


class Capture:
    """A capture running in a VM namespace (or on any device of any namespace:
    an Endpoint): start(), then stop(window) once the frames are sent, then
    result()."""

    def __init__(self, vm, until=None):
        self.vm = vm
        self.until = until
        self.proc = None
        self._frames = None

    def start(self):
        self.proc = subprocess.Popen(
            in_ns(self.vm.ns, PYTHON, os.path.abspath(__file__), "capture",
                  getattr(self.vm, "iface", "eth0"), self.until.hex() if self.until else ""),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def wait_ready(self):
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            self.proc.kill()
            raise CommandError("capture on %s did not start: %s %s" %
                               (self.vm.name, line, self.proc.stderr.read()))
        return self

    def stop(self, window):
        """Captures `window` seconds more (less once the `until` frame is in)."""
        try:
            self.proc.stdin.write("STOP %f\n" % window)
            self.proc.stdin.flush()
        except BrokenPipeError:  # it already has its frame
            pass

    def result(self):
        if self._frames is None:
            out, err = self.proc.communicate(timeout=60)
            if self.proc.returncode != 0:
                raise CommandError("capture on %s failed: %s" % (self.vm.name, err))
            self._frames = [Frame(bytes.fromhex(f["hex"]), f["vlan"]) for f in json.loads(out)]
        return self._frames

    def with_token(self, token):
        return [f for f in self.result() if f.contains(token)]


def capture_during(vms, action, window=0.8, until=None):
    """Captures on every VM in `vms` while `action()` runs and `window` seconds
    after it; returns {vm name: Capture}. `until` (vm name -> token) lets a
    capture stop as soon as it has that frame."""
    until = until or {}
    captures = {vm.name: Capture(vm, until.get(vm.name)) for vm in vms}
    try:
        for capture in captures.values():
            capture.start()
        for capture in captures.values():
            capture.wait_ready()
        action()
    finally:
        for capture in captures.values():
            if capture.proc is not None:
                capture.stop(window)
        for capture in captures.values():
            if capture.proc is not None:
                capture.result()
    return captures


class Endpoint:
    """A device of a namespace that is no VM (a switch's port, a node's
    uplink), to capture on or send from like a VM's eth0."""

    def __init__(self, name, ns, iface):
        self.name = name
        self.ns = ns
        self.iface = iface

    def send(self, *frames):
        run(in_ns(self.ns, PYTHON, os.path.abspath(__file__), "send", self.iface,
                  *[f.hex() for f in frames]))


class Vm:
    """One VM: a namespace whose eth0 is the peer of the port's device."""

    def __init__(self, lab, name, port):
        self.lab = lab
        self.name = name
        self.ns = lab.prefix + name
        self.port = port

    @property
    def mac(self):
        return self.port["mac_address"]

    @property
    def ip(self):
        return self.port["fixed_ips"][0]["ip_address"]

    def ips(self, version):
        """The port's fixed IPs of one IP version."""
        return [f["ip_address"] for f in self.port["fixed_ips"]
                if ipaddress.ip_address(f["ip_address"]).version == version]

    @property
    def ip6(self):
        return self.ips(6)[0]

    @property
    def link_local(self):
        return link_local(self.mac)

    def sh(self, *cmd, check=True, timeout=30):
        return run(in_ns(self.ns, *cmd), check=check, timeout=timeout)

    def send(self, *frames):
        self.sh(PYTHON, os.path.abspath(__file__), "send", "eth0", *[f.hex() for f in frames])


    def ping(self, ip, count=1, wait=1, interval=None, source=None, pattern=None, timeout=30):
        """True when every echo got its reply. `pattern` (bytes, at most 16)
        fills the echo payload, so a capture can recognise it."""
        cmd = ["ping", "-n", "-q", "-c", str(count), "-W", str(wait)]
        if interval:
            cmd += ["-i", str(interval)]
        if source:
            cmd += ["-I", source]
        if pattern:
            cmd += ["-p", pattern.hex()]
        proc = self.sh(*(cmd + [ip]), check=False, timeout=timeout)
        return proc.returncode == 0

    def serve_echo(self, port, name=None):
        """A TCP and UDP echo server in this VM; replies start with `name:`.
        Stops when the returned Popen's stdin is closed (see stop_echo)."""
        proc = subprocess.Popen(
            in_ns(self.ns, PYTHON, os.path.abspath(__file__), "serve", str(port), name or self.name),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "READY":
            proc.kill()
            raise CommandError("echo server on %s did not start: %s" % (self.name, proc.stderr.read()))
        return proc

    @staticmethod
    def stop_echo(proc):
        try:
            proc.communicate(timeout=5)  # closes stdin: the server returns
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()

    def echo(self, proto, ip, port, data="hello", timeout=1.0):
        """The reply of an echo server at ip:port over "tcp" or "udp", or None."""
        proc = self.connect(proto, ip, port, data, timeout)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def connect(self, proto, ip, port, data="hello", timeout=1.0):
        """The agent's connect, as a CompletedProcess: stdout is the reply, or
        "ERROR <why>" (a timeout, or e.g. "Connection refused" when an ICMP
        port unreachable came back) with exit 1."""
        return self.sh(PYTHON, os.path.abspath(__file__), "connect", proto, ip, str(port), data,
                       str(timeout), check=False)

    def stream_server(self, port):
        """A long-lived TCP line echo on `port` (see Stream)."""
        proc = subprocess.Popen(
            in_ns(self.ns, PYTHON, os.path.abspath(__file__), "stream-serve", str(port)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "READY":
            proc.kill()
            raise CommandError("stream server on %s did not start: %s" %
                               (self.name, proc.stderr.read()))
        return proc

    def stream_client(self, ip, port, interval=0.1):
        """One TCP connection to a stream server, a numbered message every
        `interval` seconds; returns a Stream that records the echoes."""
        return Stream(self, ip, port, interval).start()

    def udp_frame(self, dst_mac, dst_ip, src_mac=None, src_ip=None, sport=40000, dport=40001,
                  vlan=None):
        """(frame, token): a UDP datagram from this VM (or a forged source)."""
        token = new_token()
        payload = udp4(src_ip or self.ip, dst_ip, sport, dport, token)
        return eth(dst_mac, src_mac or self.mac, ETH_P_IP, payload, vlan=vlan), token

    def arp_request(self, target_ip, sender_ip=None, sender_mac=None, dst=BROADCAST):
        """(frame, token): who-has target_ip, the token in the frame's trailer."""
        token = new_token()
        sha = sender_mac or self.mac
        payload = arp(1, sha, sender_ip or self.ip, "00:00:00:00:00:00", target_ip, token)
        return eth(dst, sha, ETH_P_ARP, payload), token

    def link(self, up):
        self.sh("ip", "link", "set", "eth0", "up" if up else "down")


class Stream:
    """The client end of one long-lived TCP connection: a reader thread keeps
    (time, n) for every message echoed back, so a test can tell when messages
    stop arriving and when they flow again, on the same connection."""

    def __init__(self, vm, ip, port, interval):
        self.vm = vm
        self.argv = in_ns(vm.ns, PYTHON, os.path.abspath(__file__), "stream-client", ip,
                          str(port), str(interval))
        self.proc = None
        self.local = None
        self.echoes = []
        self.errors = []
        self._thread = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "CONNECTED":
            self.proc.kill()
            raise CommandError("stream client on %s did not connect: %s %s" %
                               (self.vm.name, line, self.proc.stderr.read()))
        self.local = line[1]
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            words = line.split()
            if words and words[0] == "ECHO":
                self.echoes.append((time.monotonic(), int(words[1])))
            elif words and words[0] == "ERROR":
                self.errors.append(line.strip())

    def count(self):
        return len(self.echoes)

    def last(self):
        return self.echoes[-1][1] if self.echoes else 0

    def wait_for(self, count, timeout):
        """True once at least `count` echoes are in."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.echoes) >= count:
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        return len(self.echoes) >= count

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        try:
            self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        if self._thread is not None:
            self._thread.join(timeout=2)


def make_port(network_id, subnet_id, mac, ip, host, **extra):
    port = {
        "id": str(uuid.uuid4()),
        "network_id": network_id,
        "mac_address": mac,
        "fixed_ips": [{"subnet_id": subnet_id, "ip_address": ip}],
        "binding:host_id": host,
        "device_owner": "compute:nova",
        "security_groups": [],
        "port_security_enabled": True,
    }
    port.update(extra)
    return port


def make_network(name, vni, cidr="10.0.0.0/24", project="tenant-x"):
    net_id = str(uuid.uuid4())
    subnet_id = str(uuid.uuid4())
    network = {"id": net_id, "name": name, "project_id": project,
               "provider:network_type": "vxlan", "provider:segmentation_id": vni,
               "provider:physical_network": None, "mtu": 1450}
    hosts = list(ipaddress.ip_network(cidr).hosts())
    subnet = {"id": subnet_id, "network_id": net_id, "ip_version": 4, "cidr": cidr,
              "gateway_ip": str(hosts[0]), "enable_dhcp": False}
    return network, subnet


_LABS = []


class Lab:
    """One node namespace, its VMs and its weft node; destroy() removes it all."""

    def __init__(self, tag):
        self.lab_prefix = PREFIX + tag
        self.prefix = self.lab_prefix + "-"
        self.node = PREFIX + tag
        self.node_ns = self.prefix + "node"
        self.namespaces = []
        self.vms = {}
        self.state_dir = None
        self.destroyed = False
        _LABS.append(self)

    # -- building ----------------------------------------------------------------

    def create(self):
        self.state_dir = tempfile.mkdtemp(prefix=PREFIX + "state-")
        self._plug([])
        return self

    def _lab_argv(self, *args):
        return [WEFT, "-j", "--state-dir", self.state_dir, "lab", "--prefix",
                self.lab_prefix] + list(args)

    def _vm_entry(self, name, port, up=True, prefixlen=24, ipv6=False):
        """The topology entry of a VM of `port` on this lab's node: weft takes
        its device, MAC and addresses from the port."""
        return {"name": name, "port": port, "node": self.node, "up": up,
                "prefixlen": prefixlen, "ipv6": ipv6}

    def _plug(self, vms, dry_run=False):
        """Has weft make the node namespace and `vms` (topology entries) that
        are not there yet; returns what `weft lab plug` said of each VM."""
        topology = {"nodes": [{"name": self.node, "namespace": "node"}], "vms": vms}
        argv = self._lab_argv("plug", "-f", "-", *(["--dry-run"] if dry_run else []))
        try:
            proc = run(argv, input=json.dumps(topology))
        finally:
            # Whatever weft made is this lab's to remove, also after a failure.
            self.namespaces = sorted(n for n in os.listdir("/run/netns")
                                     if n.startswith(self.prefix))
        return json.loads(proc.stdout)["vms"]

    def add_vm(self, name, port, up=True, prefixlen=24, ipv6=False):
        """A VM namespace whose eth0 (the port's MAC and first fixed IP) pairs with
        the port's device in the node namespace. With `ipv6`, IPv6 is turned on
        in the VM (without duplicate address detection, so addresses work at
        once) and every IPv6 fixed IP is added as a /64 next to the EUI-64
        link-local address."""
        vm = Vm(self, name, port)
        plugged = self._plug([self._vm_entry(name, port, up, prefixlen, ipv6)])
        vm.device = plugged[0]["device"]
        self.vms[name] = vm
        return vm

    def device(self, port):
        """The device of `port` in the node namespace, as weft names it: its
        VM's, or, for a port without a VM yet, the one `weft lab plug` would
        make."""
        for vm in self.vms.values():
            if vm.port["id"] == port["id"]:
                return vm.device
        return self._plug([self._vm_entry("probe", port)], dry_run=True)[0]["device"]

    def node_sh(self, *cmd, check=True):
        return run(in_ns(self.node_ns, *cmd), check=check)

    # -- weft ----------------------------------------------------------------------

    def weft_argv(self, *args, json_output=True):
        argv = [WEFT]
        if json_output:
            argv.append("-j")
        return argv + ["--netns", self.node_ns, "--node", self.node, "--state-dir",
                       self.state_dir] + list(args)

    def weft(self, *args, input=None, json_output=True):
        """(exit code, parsed JSON or None, raw stdout, stderr)."""
        proc = run(self.weft_argv(*args, json_output=json_output), check=False, input=input)
        parsed = None
        if json_output:
            try:
                parsed = json.loads(proc.stdout)
            except ValueError:
                parsed = None
        return proc.returncode, parsed, proc.stdout, proc.stderr

    def weft_ok(self, *args, input=None):
        code, parsed, out, err = self.weft(*args, input=input)
        if code != 0 or parsed is None:
            raise CommandError("weft %s: exit %d\nstdout: %s\nstderr: %s" %
                               (" ".join(args), code, out, err))
        return parsed

    def install(self, *extra):
        return self.weft_ok("node", "install", *extra)

    def uninstall(self):
        return self.weft_ok("node", "uninstall")

    def apply(self, document, dry_run=False):
        args = ["apply", "-f", "-"] + (["--dry-run"] if dry_run else [])
        return self.weft_ok(*args, input=json.dumps(document))

    def apply_raw(self, text, dry_run=False):
        args = ["apply", "-f", "-"] + (["--dry-run"] if dry_run else [])
        return self.weft(*args, input=text)

    def counters(self, port_id):
        """reason -> packets counted on the port's device."""
        out = {}
        for row in self.weft_ok("stats", "--port", port_id):
            if row.get("port_id") == port_id:
                out[row["reason"]] = out.get(row["reason"], 0) + row["packets"]
        return out

    def pin_dir(self):
        return os.path.join(BPFFS, "weft", self.node)

    def maps_snapshot(self):
        """name -> decoded dump, for every map the node has."""
        return {m["name"]: self.weft_ok("map", "dump", m["name"])
                for m in self.weft_ok("map", "list")}

    # -- teardown ------------------------------------------------------------------

    def destroy(self, check=True):
        """Removes everything through `weft lab down`; safe to call twice and
        after a partial create(). With `check`, raises afterwards if weft
        itself left something behind."""
        if self.destroyed:
            return []
        self.destroyed = True
        problems = []
        if self.state_dir is not None:
            try:
                proc = run(self._lab_argv("down"), check=False)
                if proc.returncode != 0:
                    problems.append("weft lab down: exit %d %s %s" %
                                    (proc.returncode, proc.stdout, proc.stderr))
            except Exception as error:  # keep cleaning
                problems.append("weft lab down: %s" % error)
        # A weft that failed to clean up must not leave pins or namespaces
        # for the next run.
        pins = self.pin_dir()
        if os.path.lexists(pins):
            problems.append("pins left under %s" % pins)
            shutil.rmtree(pins, ignore_errors=True)
            try:
                os.rmdir(os.path.join(BPFFS, "weft"))
            except OSError:
                pass
        left = sorted(n for n in os.listdir("/run/netns") if n.startswith(self.prefix)) \
            if os.path.isdir("/run/netns") else []
        if left:
            problems.append("namespaces left: %s" % " ".join(left))
            for ns in reversed(left):
                run(["ip", "netns", "del", ns], check=False)
        self.namespaces = []
        if self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        if self in _LABS:
            _LABS.remove(self)
        if check and problems:
            raise AssertionError("lab %s: cleaned up, but %s" % (self.node, "; ".join(problems)))
        return problems


def destroy_all():
    for lab in list(_LABS):
        try:
            lab.destroy(check=False)
        except Exception:
            pass


def _on_sigterm(signum, frame):
    destroy_all()
    os._exit(128 + signum)


atexit.register(destroy_all)
if __name__ != "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)


# --- assertions shared by the tests --------------------------------------------


class LabTestMixin:
    """Helpers for unittest.TestCase classes that hold `cls.lab`."""

    @classmethod
    def start_lab(cls, tag):
        """Fails without root; makes `cls.lab`, removed when the class ends,
        also when a test or the set-up fails."""
        require_root()
        cls.lab = Lab(tag)
        cls.addClassCleanup(cls.lab.destroy)
        cls.lab.create()
        return cls.lab

    def delta(self, before, after):
        return {reason: after.get(reason, 0) - before.get(reason, 0)
                for reason in set(before) | set(after)}

    def watch(self, vms, action, window=0.8, until=None):
        return capture_during(vms, action, window, until)

    def exchange(self, sender, frames, arrive=(), absent=(), window=0.8):
        """Sends `frames` ((frame, token) pairs) from `sender` and asserts every
        token reaches each VM in `arrive` and none in `absent`. Returns
        {vm name: Capture}."""
        tokens = [token for _, token in frames]
        # A capture that expects the one frame may stop once it has it; a
        # capture that must stay empty waits the whole window.
        until = {vm.name: tokens[0] for vm in arrive} if len(tokens) == 1 else {}
        captures = self.watch(list(arrive) + list(absent),
                              lambda: sender.send(*[frame for frame, _ in frames]), window, until)
        for vm in arrive:
            for token in tokens:
                self.assertTrue(captures[vm.name].with_token(token),
                                "frame %s from %s did not arrive at %s (it saw %s)" %
                                (token, sender.name, vm.name, captures[vm.name].result()))
        for vm in absent:
            for token in tokens:
                self.assertFalse(captures[vm.name].with_token(token),
                                 "frame %s from %s must not arrive at %s" %
                                 (token, sender.name, vm.name))
        return captures

    def assertCounted(self, lab, port_id, before, reason, at_least=1):
        after = lab.counters(port_id)
        got = after.get(reason, 0) - before.get(reason, 0)
        self.assertGreaterEqual(got, at_least,
                                "port %s: %r counted %d (want >= %d); counters now %s" %
                                (port_id, reason, got, at_least, after))
        return after


if __name__ == "__main__":
    _agent_main(sys.argv[1:])


# --- security groups for tests about something else -----------------------------

OPEN_GROUP_ID = "0pen0000-0000-4000-8000-000000000000"


def open_group():
    """A group that admits everything both ways, IPv4 and IPv6: tests of L2
    switching and anti-spoofing use it so that security groups stay out of
    their way (a secured port with no group passes only infrastructure traffic)."""
    rules = [{"direction": d, "ethertype": e} for d in ("ingress", "egress")
             for e in ("IPv4", "IPv6")]
    return {"id": OPEN_GROUP_ID, "name": "open", "stateful": True,
            "security_group_rules": rules}


def with_open_group(document):
    """The document with the open group added and given to every secured port
    that has no group of its own."""
    doc = dict(document)
    groups = list(doc.get("security_groups") or [])
    if not any(g.get("id") == OPEN_GROUP_ID for g in groups):
        groups.append(open_group())
    doc["security_groups"] = groups
    ports = []
    for port in doc.get("ports", []):
        port = dict(port)
        if port.get("port_security_enabled", True) and not port.get("security_groups"):
            port["security_groups"] = [OPEN_GROUP_ID]
        ports.append(port)
    doc["ports"] = ports
    return doc
