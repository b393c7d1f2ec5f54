"""A real Neutron for the lab: Debian's neutron-server (ML2, the "weft"
mechanism driver of neutron/networking_weft) on a MariaDB of the test's own,
in the controller namespace, without Keystone (auth_strategy noauth) or a
message broker (transport_url fake://), and a small client of its REST API.

Processes are started in their own session and stopped by process group
(neutron-server forks workers); data lives in the caller's folder."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

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
