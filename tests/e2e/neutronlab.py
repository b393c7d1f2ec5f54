"""A real Neutron for the lab: Debian's neutron-server (ML2, the "weft"
mechanism driver of neutron/networking_weft) on a MariaDB of the test's own,
in the controller namespace, without Keystone (auth_strategy noauth) or a
message broker (transport_url fake://), and a small client of its REST API.

Processes are started in their own session and stopped by process group
(neutron-server forks workers); data lives in the caller's folder.
ControlPlane puts it all together on an AgentLab: what the Neutron test and
`scripts/demo.sh --with-neutron` run."""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import etcdlab
import weftlab as w

DRIVER = os.path.join(w.REPO, "neutron")
PYTHON = "/usr/bin/python3"  # Debian's, which has neutron; not a virtualenv's


def _start(argv, log_path, env=None):
    log = open(log_path, "a")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True,
                            env=dict(os.environ, **(env or {})))
    log.close()
    return proc


def _stop(proc, timeout=20):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class MariaDb:
    """A server on a unix socket only, its data in `folder`."""

    def __init__(self, netns, folder):
        self.netns, self.folder = netns, folder
        self.socket = os.path.join(folder, "mysql.sock")
        self.proc = None

    def start(self):
        data = os.path.join(self.folder, "data")
        if not os.path.isdir(data):
            w.run(["mariadb-install-db", "--datadir=" + data, "--user=root",
                   "--auth-root-authentication-method=normal", "--skip-test-db"], timeout=120)
        self.proc = _start(w.in_ns(self.netns, "mariadbd", "--datadir=" + data, "--socket=" +
                                   self.socket, "--skip-networking", "--user=root",
                                   "--pid-file=" + os.path.join(self.folder, "mysql.pid")),
                           os.path.join(self.folder, "mariadb.log"))
        deadline = time.monotonic() + 30
        while w.run(["mariadb", "-S", self.socket, "-u", "root", "-e", "SELECT 1"],
                    check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("MariaDB did not start: see %s/mariadb.log" % self.folder)
            time.sleep(0.2)
        w.run(["mariadb", "-S", self.socket, "-u", "root", "-e",
               "CREATE DATABASE IF NOT EXISTS neutron"])

    def stop(self):
        _stop(self.proc)
        self.proc = None


class NeutronServer:
    """neutron-server with ML2 and the weft driver, on 127.0.0.1:`port` of
    `netns`, its state in etcd at `etcd_url` under `prefix`."""

    def __init__(self, netns, folder, database, etcd_url, prefix="/weft", port=19697,
                 physnets=("physnet1",), etcd_options=None):
        """`etcd_options`: more of the driver's [ml2_weft] options (ca_file,
        cert_file, key_file, username, password)."""
        self.netns, self.folder, self.port = netns, folder, port
        self.url = "http://127.0.0.1:%d/v2.0" % port
        self.proc = None
        self.log_path = os.path.join(folder, "neutron-server.log")
        os.makedirs(folder, exist_ok=True)
        self.conf = os.path.join(folder, "neutron.conf")
        self.ml2 = os.path.join(folder, "ml2_conf.ini")
        with open(self.conf, "w") as f:
            f.write("""[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = noauth
transport_url = fake://
bind_host = 127.0.0.1
bind_port = %(port)d
api_workers = 0
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
log_file = %(log)s
state_path = %(folder)s/state

[database]
connection = mysql+pymysql://root@localhost/neutron?unix_socket=%(socket)s

[oslo_concurrency]
lock_path = %(folder)s/lock
""" % {"port": port, "log": self.log_path, "folder": folder, "socket": database.socket})
        with open(self.ml2, "w") as f:
            f.write("""[ml2]
type_drivers = vxlan,vlan,flat
tenant_network_types = vxlan
mechanism_drivers = weft
extension_drivers = port_security

[ml2_type_vxlan]
vni_ranges = 1000:1999

[ml2_type_vlan]
network_vlan_ranges = %(vlans)s

[ml2_type_flat]
flat_networks = *

[securitygroup]
enable_security_group = true
firewall_driver = noop

[ml2_weft]
etcd_url = %(etcd)s
prefix = %(prefix)s
""" % {"vlans": ",".join("%s:100:200" % p for p in physnets), "etcd": etcd_url,
       "prefix": prefix})
            for option, value in sorted((etcd_options or {}).items()):
                f.write("%s = %s\n" % (option, value))

    def migrate(self):
        """neutron-db-manage upgrade heads (on MariaDB: Neutron's migrations
        do not run on SQLite); its seconds."""
        started = time.monotonic()
        w.run(w.in_ns(self.netns, PYTHON, "/usr/bin/neutron-db-manage", "--config-file",
                      self.conf, "--config-file", self.ml2, "upgrade", "heads"), timeout=600)
        return time.monotonic() - started

    def start(self):
        """Starts it and waits for its API; its seconds."""
        started = time.monotonic()
        self.proc = _start(w.in_ns(self.netns, PYTHON, "/usr/bin/neutron-server",
                                   "--config-file", self.conf, "--config-file", self.ml2),
                           os.path.join(self.folder, "neutron-server.out"),
                           env={"PYTHONPATH": DRIVER})
        deadline = time.monotonic() + 120
        while True:
            try:
                Api(self.url).get("/networks")
                return time.monotonic() - started
            except (OSError, urllib.error.URLError, ValueError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("neutron-server did not start:\n%s" % self.log()[-4000:])
                time.sleep(0.2)

    def stop(self):
        _stop(self.proc)
        self.proc = None

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body))
        self.status, self.body = status, body


class Api:
    """Neutron's REST API without Keystone: the project and the admin role
    in headers (noauth); the project is also named in each body, as noauth
    wants."""

    def __init__(self, url, project="admin"):
        self.url, self.project = url, project

    def _call(self, method, path, body=None):
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode() if body is not None else None,
            {"Content-Type": "application/json", "X-Project-Id": self.project,
             "X-Roles": "admin"}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, error.read().decode())
        return json.loads(text) if text else None

    def get(self, path):
        return self._call("GET", path)

    def delete(self, path):
        return self._call("DELETE", path)

    def create(self, kind, **fields):
        """POST /<kind>s with `fields` (and the project); the new resource."""
        fields.setdefault("tenant_id", self.project)
        plural = {"security_group_rule": "security-group-rules",
                  "security_group": "security-groups"}.get(kind, kind + "s")
        return self._call("POST", "/" + plural, {kind: fields})[kind]

    def update(self, kind, resource_id, **fields):
        return self._call("PUT", "/%ss/%s" % (kind, resource_id), {kind: fields})[kind]

    def port(self, port_id):
        return self.get("/ports/" + port_id)["port"]

    def wait_port_status(self, port_id, status="ACTIVE", timeout=20):
        """The port once Neutron shows it in `status`."""
        deadline = time.monotonic() + timeout
        while True:
            port = self.port(port_id)
            if port["status"] == status:
                return port
            if time.monotonic() > deadline:
                raise AssertionError("port %s: %s, not %s after %.0f s" %
                                     (port_id, port["status"], status, timeout))
            time.sleep(0.05)

    def default_group(self):
        groups = self.get("/security-groups?tenant_id=%s&name=default" %
                          self.project)["security_groups"]
        return groups[0]


def require_neutron():
    for binary in ("/usr/bin/neutron-server", "/usr/bin/neutron-db-manage", "mariadbd",
                   "mariadb-install-db"):
        if not (os.access(binary, os.X_OK) or shutil.which(binary)):
            raise AssertionError("%s is missing (scripts/install-deps.sh --tests installs "
                                 "neutron-server and mariadb-server)" % binary)


def enter_netns(name):
    """Moves this process (its main thread, and what it starts) into
    /run/netns/<name>: the REST API listens on the controller's loopback."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
    finally:
        os.close(fd)


class ControlPlane:
    """A controller namespace on `lab`'s underlay with etcd, MariaDB and
    neutron-server, and weftd --etcd on every node of the lab.

    etcd speaks only TLS, wants a client certificate of the lab's CA and has
    its auth on: each agent is the user of its certificate's CN (it may read
    the state and write its own keys); the driver logs in as "neutron" with
    a password (etcd's JSON gateway takes no CN) and may write the whole
    prefix. up() enters the controller's namespace for good (the REST API is
    on its loopback); the caller registers down() for its cleanup."""

    def __init__(self, lab, ip, etcd_port, etcd_peer_port, keys="/weft", say=None):
        self.lab, self.ip, self.keys = lab, ip, keys
        self.etcd_ports = (etcd_port, etcd_peer_port)
        self.say = say or (lambda text: None)
        self.ctl = self.etcd = self.db = self.server = None

    def up(self):
        lab = self.lab
        self.ctl = etcdlab.controller(lab.prefix, self.ip)
        enter_netns(self.ctl)
        certs = etcdlab.Certs(os.path.join(lab.state, "pki"))
        self.etcd = etcdlab.Etcd(self.ctl, self.ip, os.path.join(lab.state, "etcd"),
                                 os.path.join(lab.state, "etcd.log"), *self.etcd_ports,
                                 certs=certs)
        self.etcd.start()
        password = os.urandom(12).hex()
        self.etcd.enable_rbac(self.keys, [lab.node(ns) for ns in lab.nodes],
                              passwords={"neutron": password})
        self.say("etcd %s: TLS with client certificates, auth on" % self.etcd.url)
        gateway_cert, gateway_key = certs.issue("neutron-server", common_name=False)
        self.db = MariaDb(self.ctl, os.path.join(lab.state, "mariadb"))
        os.makedirs(self.db.folder)
        self.db.start()
        self.server = NeutronServer(
            self.ctl, os.path.join(lab.state, "neutron"), self.db, self.etcd.local, self.keys,
            etcd_options={"ca_file": certs.ca, "cert_file": gateway_cert,
                          "key_file": gateway_key, "username": "neutron",
                          "password": password})
        migrate = self.server.migrate()
        start = self.server.start()
        self.say("neutron-db-manage upgrade heads %.1f s; neutron-server up in %.1f s "
                 "(%s)" % (migrate, start, self.server.url))
        for ns in lab.nodes:
            cert, key = certs.issue(lab.node(ns))
            lab.start_agent(ns, "--etcd", self.etcd.url, "--etcd-prefix", self.keys,
                            "--etcd-cacert", certs.ca, "--etcd-cert", cert, "--etcd-key", key,
                            "--etcd-lease-ttl", "5")
        # Ready once the driver has copied each agent's VTEP into the state.
        deadline = time.monotonic() + 30
        while len(self.etcd.get(self.keys + "/state/nodes/", prefix=True)) < len(lab.nodes):
            if time.monotonic() > deadline:
                raise AssertionError("the driver wrote no nodes:\n" + self.server.log()[-3000:])
            time.sleep(0.1)
        for ns in lab.nodes:
            lab.wait_status(ns, lambda s: s.get("ready"), "ready")
        self.say("weftd on %s: ready, following etcd" % ", ".join(lab.nodes))

    def down(self):
        for stop in (self.server, self.db, self.etcd):
            if stop is not None:
                stop.stop()
        if self.ctl:
            w.run(["ip", "netns", "del", self.ctl], check=False)

    def api(self, project):
        return Api(self.server.url, project)

    def plug(self, port, node, vm):
        """The VM of `port` plugged on lab node `node` as Nova does, after
        the port exists (AgentLab.plug_vm); the tap's name."""
        return self.lab.plug_vm(port, node, vm)[1]
