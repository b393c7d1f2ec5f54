"""etcd v3 through its JSON gateway (/v3/kv/..., /v3/watch) over HTTP(S).

Not gRPC: neutron-server runs under eventlet, and grpc's own threads do not
mix with eventlet's green ones (networking-calico left python-etcd3 for
etcd3gw for that reason). urllib's sockets are green under eventlet.

With etcd's auth on, the gateway does not take a client certificate's CN as
the user (etcd refuses a certificate with a CN there): the client shows a
certificate without CN, if etcd asks for one, and logs in with a user name
and password (/v3/auth/authenticate), sending the token it gets with every
call and logging in again when etcd no longer knows it."""

import base64
import http.client
import json
import logging
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request


LOG = logging.getLogger(__name__)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _text(b64):
    return base64.b64decode(b64).decode() if b64 else ""


def range_end(prefix):
    """etcd's end of the range of keys that start with `prefix`."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return raw.decode()
        raw.pop()
    return "\0"


class EtcdError(Exception):
    pass


class Etcd:
    def __init__(self, url, ca_file=None, cert_file=None, key_file=None, username=None,
                 password=None, timeout=5):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.context = None
        self.username, self.password = username, password
        self.token = None
        split = urllib.parse.urlsplit(self.url)
        self._host, self._port = split.hostname, split.port
        self._idle, self._lock = [], threading.Lock()
        if self.url.startswith("https://"):
            self.context = ssl.create_default_context(cafile=ca_file)
            if cert_file:
                self.context.load_cert_chain(cert_file, key_file)

    def _headers(self):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        return headers

    def _connection(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        if self.context is not None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=self.context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _request(self, path, body):
        """(HTTP status, body) of one unary call. A kept connection that etcd
        closed meanwhile is dropped and the call made once more on a new one
        (every call here may be repeated: puts and deletes are idempotent, a
        txn's compare fails the second time)."""
        data = json.dumps(body).encode()
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request("POST", path, data, self._headers())
                response = connection.getresponse()
                text = response.read()
            except (http.client.HTTPException, OSError) as error:
                connection.close()
                if attempt:
                    raise EtcdError("etcd %s %s: %s" % (self.url, path, error))
                continue
            if response.will_close:
                connection.close()
            else:
                with self._lock:
                    self._idle.append(connection)
            return response.status, text
        raise AssertionError("not reached")

    def login(self):
        """A new token for username/password (none without a user)."""
        self.token = None
        if not self.username:
            return
        status, text = self._request("/v3/auth/authenticate",
                                     {"name": self.username, "password": self.password or ""})
        try:
            self.token = json.loads(text)["token"]
        except (ValueError, KeyError):
            raise EtcdError("etcd %s: login as %s refused: HTTP %d: %s" %
                            (self.url, self.username, status, text.decode(errors="replace")))
        LOG.info("weft: logged in to etcd %s as %s", self.url, self.username)

    def call(self, path, body):
        if self.username and not self.token:
            self.login()
        status, text = self._request(path, body)
        if status == 401 and self.username:
            self.login()  # the token expired, or etcd restarted
            status, text = self._request(path, body)
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"error": text.decode(errors="replace")}
        if status != 200 or "error" in answer:
            raise EtcdError("etcd %s %s: HTTP %d: %s" % (self.url, path, status,
                                                         answer.get("error", answer)))
        return answer

    def _stream(self, path, body, timeout):
        """A response to read as it comes (a watch), on a connection of its
        own."""
        if self.username and not self.token:
            self.login()
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                         self._headers())
        try:
            return urllib.request.urlopen(request, timeout=timeout, context=self.context)
        except urllib.error.HTTPError as error:
            if error.code == 401 and self.username:
                self.token = None  # the next call logs in again
            raise EtcdError("etcd %s %s: HTTP %d: %s" % (self.url, path, error.code,
                                                         error.read().decode(errors="replace")))
        except (urllib.error.URLError, OSError) as error:
            raise EtcdError("etcd %s %s: %s" % (self.url, path, error))

    def get(self, key, prefix=False):
        """({key: (value, mod_revision)}, revision)."""
        body = {"key": _b64(key)}
        if prefix:
            body["range_end"] = _b64(range_end(key))
        answer = self.call("/v3/kv/range", body)
        kvs = {_text(kv["key"]): (_text(kv.get("value")), int(kv.get("mod_revision", 0)))
               for kv in answer.get("kvs", [])}
        return kvs, int(answer["header"]["revision"])

    def put(self, key, value):
        return self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def delete(self, key, prefix=False):
        body = {"key": _b64(key)}
        if prefix:
            body["range_end"] = _b64(range_end(key))
        return self.call("/v3/kv/deleterange", body)

    def _if_unchanged(self, key, mod_revision, request):
        compare = {"key": _b64(key), "target": "MOD", "result": "EQUAL",
                   "mod_revision": str(mod_revision)}
        answer = self.call("/v3/kv/txn", {"compare": [compare], "success": [request]})
        return bool(answer.get("succeeded"))

    def put_if_unchanged(self, key, value, mod_revision):
        """Writes only if `key` is still at `mod_revision` (0: absent);
        True when it wrote."""
        return self._if_unchanged(key, mod_revision,
                                  {"request_put": {"key": _b64(key), "value": _b64(value)}})

    def delete_if_unchanged(self, key, mod_revision):
        """Deletes `key` only if it is still at `mod_revision`; True when it
        did."""
        return self._if_unchanged(key, mod_revision,
                                  {"request_delete_range": {"key": _b64(key)}})

    def watch(self, prefix, start_revision):
        """(type, key, value, revision) for every change under `prefix`
        after `start_revision`, as they come; raises EtcdError when the
        stream ends (or etcd compacted past start_revision)."""
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(range_end(prefix)),
                                   "start_revision": str(start_revision)}}
        response = self._stream("/v3/watch", body, timeout=3600)
        with response:
            for line in response:
                if not line.strip():
                    continue
                result = json.loads(line).get("result", {})
                if result.get("canceled"):
                    raise EtcdError("etcd watch %s cancelled: %s (compacted to %s)" %
                                    (prefix, result.get("cancel_reason"),
                                     result.get("compact_revision")))
                for event in result.get("events", []):
                    kv = event.get("kv", {})
                    yield (event.get("type", "PUT"), _text(kv.get("key")),
                           _text(kv.get("value")), int(kv.get("mod_revision", 0)))
        raise EtcdError("etcd watch %s: the stream ended" % prefix)
