"""etcd for the lab: Debian's etcd-server in a controller namespace on a lab's
underlay, as a cloud's controller node runs it, and the writes the Neutron
driver would make. Used by the agent's etcd tests and the scale benchmark.

Everything runs in namespaces the caller made (or that `controller()` makes
on the lab's underlay switch); processes are started and stopped by pid."""

import base64
import json
import os
import shutil
import signal
import subprocess
import time

import weftlab as w

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
KINDS = ("nodes", "networks", "subnets", "ports", "security_groups")


def controller(lab_prefix, ip, prefixlen=24):
    """A namespace <lab_prefix>-ctl plugged into the lab's underlay switch
    (<lab_prefix>-underlay, bridge br0) with `ip`; returns its name. The
    caller deletes it (`ip netns del`)."""
    ctl = lab_prefix + "-ctl"
    w.run(["ip", "netns", "add", ctl])
    w.run(["ip", "-n", ctl, "link", "set", "lo", "up"])
    underlay = lab_prefix + "-underlay"
    w.run(["ip", "-n", underlay, "link", "add", "u-ctl", "type", "veth", "peer", "name", "eth0",
           "netns", ctl])
    w.run(["ip", "-n", underlay, "link", "set", "u-ctl", "master", "br0", "up"])
    w.run(["ip", "-n", ctl, "addr", "add", "%s/%d" % (ip, prefixlen), "dev", "eth0"])
    w.run(["ip", "-n", ctl, "link", "set", "eth0", "up"])
    return ctl


class Certs:
    """A CA of the test's own and the certificates it issues (openssl), in
    `folder`: a server's with its IPs, and clients' whose CN is the etcd
    user (etcd's --client-cert-auth)."""

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.ca = os.path.join(folder, "ca.pem")
        self.ca_key = os.path.join(folder, "ca-key.pem")
        w.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
               "-subj", "/CN=weft test CA", "-keyout", self.ca_key, "-out", self.ca])

    def issue(self, name, ips=(), common_name=True):
        """(certificate, key) of CN `name`; with `ips`, for a server there;
        without `common_name`, `name` is only its O (for etcd's JSON
        gateway, which refuses a client certificate with a CN)."""
        cert = os.path.join(self.folder, name + ".pem")
        key = os.path.join(self.folder, name + "-key.pem")
        csr = os.path.join(self.folder, name + ".csr")
        ext = os.path.join(self.folder, name + ".ext")
        with open(ext, "w") as f:
            if ips:
                f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n" %
                        ",".join("IP:" + ip for ip in ips))
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        subject = ("/CN=" if common_name else "/O=") + name
        w.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
               "-keyout", key, "-out", csr])
        w.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
               "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert])
        return cert, key


def key(prefix, kind, resource):
    """The key of a resource of the state document (nodes by name)."""
    return "%s/state/%s/%s" % (prefix, kind, resource["name" if kind == "nodes" else "id"])


class Etcd:
    """One etcd member in `netns`, listening on `ip`:`client_port` and on
    127.0.0.1 (ports away from etcd's defaults), its data in `data_dir`."""

    def __init__(self, netns, ip, data_dir, log_path, client_port=23790, peer_port=23800,
                 certs=None):
        """With `certs` (a Certs), clients speak TLS and must show a
        certificate of that CA; etcdctl here is the user "root"."""
        self.netns, self.ip, self.data_dir, self.log_path = netns, ip, data_dir, log_path
        self.client_port, self.peer_port = client_port, peer_port
        self.certs = certs
        scheme = "https" if certs else "http"
        self.url = "%s://%s:%d" % (scheme, ip, client_port)
        self.local = "%s://127.0.0.1:%d" % (scheme, client_port)
        self.tls = []
        if certs:
            server, server_key = certs.issue("etcd-server", ips=(ip, "127.0.0.1"))
            self.tls = ["--cert-file", server, "--key-file", server_key, "--trusted-ca-file",
                        certs.ca, "--client-cert-auth"]
            root, root_key = certs.issue("root")
            self.ctl_tls = ["--cacert", certs.ca, "--cert", root, "--key", root_key]
        else:
            self.ctl_tls = []
        self.proc = None

    def start(self):
        log = open(self.log_path, "a")
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.proc = subprocess.Popen(w.in_ns(
            self.netns, ETCD, "--name", "ctl", "--data-dir", self.data_dir,
            "--listen-client-urls", "%s,%s" % (self.url, self.local),
            "--advertise-client-urls", self.url, "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer, "--initial-cluster", "ctl=" + peer,
            *self.tls),
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 20
        while self.ctl("endpoint", "status", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.log_path) as f:
                    raise AssertionError("etcd did not start:\n" + f.read()[-3000:])
            time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def ctl(self, *args, check=True, input=None, tls=None):
        """etcdctl here; `tls`: other --cacert/--cert/--key than root's."""
        return w.run(w.in_ns(self.netns, "env", "ETCDCTL_API=3", ETCDCTL, "--endpoints",
                             self.local, *(self.ctl_tls if tls is None else tls), *args),
                     check=check, input=input)

    def enable_rbac(self, prefix, agents, writers=("neutron",), passwords=None):
        """etcd's auth on: `writers` may read and write all of `prefix`; each
        agent host may read <prefix>/state/ and write only its own
        announcement and status keys. Users are certificates' CNs, or log
        in with their password in `passwords` ({user: password})."""
        passwords = passwords or {}
        self.ctl("user", "add", "root", "--no-password")
        self.ctl("user", "grant-role", "root", "root")
        for user in writers:
            self.ctl("role", "add", user)
            self.ctl("role", "grant-permission", user, "--prefix=true", "readwrite", prefix + "/")
            if user in passwords:
                self.ctl("user", "add", "%s:%s" % (user, passwords[user]), "--interactive=false")
            else:
                self.ctl("user", "add", user, "--no-password")
            self.ctl("user", "grant-role", user, user)
        for host in agents:
            role = "agent-" + host
            self.ctl("role", "add", role)
            self.ctl("role", "grant-permission", role, "--prefix=true", "read", prefix + "/state/")
            self.ctl("role", "grant-permission", role, "readwrite", prefix + "/agents/" + host)
            self.ctl("role", "grant-permission", role, "--prefix=true", "readwrite",
                     "%s/status/%s/" % (prefix, host))
            self.ctl("user", "add", host, "--no-password")
            self.ctl("user", "grant-role", host, role)
        self.ctl("auth", "enable")

    def put(self, key, value):
        """The revision of the write."""
        out = self.ctl("put", "-w", "json", key,
                       value if isinstance(value, str) else json.dumps(value)).stdout
        return int(json.loads(out)["header"]["revision"])

    def delete(self, key):
        out = self.ctl("del", "-w", "json", key).stdout
        return int(json.loads(out)["header"]["revision"])

    def get(self, key, prefix=False):
        """{key: value} of `key` (or of every key under it)."""
        out = self.ctl("get", key, "-w", "json", *(["--prefix"] if prefix else [])).stdout
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
                for kv in json.loads(out).get("kvs", [])}

    def mod_revision(self, key):
        """The revision `key` was last written at (0: absent)."""
        out = self.ctl("get", key, "-w", "json").stdout
        kvs = json.loads(out).get("kvs", [])
        return int(kvs[0]["mod_revision"]) if kvs else 0

    def put_document(self, prefix, document):
        """Every resource of a state document under its key, one put each."""
        revision = 0
        for kind in KINDS:
            for resource in document.get(kind, []):
                revision = self.put(key(prefix, kind, resource), resource)
        return revision

    def put_many(self, items, batch=128):
        """(key, value) pairs in transactions of `batch` puts (etcd's default
        limit of operations a transaction), through etcd's JSON gateway from
        inside the namespace (plain etcd only); returns the last revision."""
        script = (
            "import base64, json, sys, urllib.request\n"
            "url, batch = sys.argv[1], int(sys.argv[2])\n"
            "items = json.load(sys.stdin)\n"
            "rev = 0\n"
            "b64 = lambda s: base64.b64encode(s.encode()).decode()\n"
            "for i in range(0, len(items), batch):\n"
            "    ops = [{'request_put': {'key': b64(k), 'value': b64(v)}}"
            " for k, v in items[i:i + batch]]\n"
            "    req = urllib.request.Request(url + '/v3/kv/txn', json.dumps({'success': ops})"
            ".encode(), {'Content-Type': 'application/json'})\n"
            "    rev = int(json.load(urllib.request.urlopen(req, timeout=30))"
            "['header']['revision'])\n"
            "print(rev)\n")
        proc = w.run(w.in_ns(self.netns, w.PYTHON, "-c", script,
                             "http://127.0.0.1:%d" % self.client_port, str(batch)),
                     input=json.dumps([[k, v if isinstance(v, str) else json.dumps(v)]
                                       for k, v in items]), timeout=600)
        return int(proc.stdout.strip())
