"""The ML2 mechanism driver "weft".

After each commit it writes what the nodes need into etcd, one resource a
key, in the shapes `weft apply` takes (README "The control plane"):
  <prefix>/state/{networks,subnets,ports,security_groups}/<id>
  <prefix>/state/nodes/<host>   copied from each agent's announcement
It binds ports (vif_type "tap") only on hosts whose weftd is alive
(<prefix>/agents/<host>, on the agent's lease) and can carry the network,
and turns the agents' <prefix>/status/<host>/<port> into the port's status
through Neutron's provisioning blocks, so that Nova's wait for
network-vif-plugged ends. At start, and whenever etcd came back, it writes
everything again from Neutron's database and removes what Neutron no
longer has. A key is never written over a newer revision_number.
"""

import json
import threading
import time

from neutron_lib import constants as n_const
from neutron_lib import context as n_context
from neutron_lib.api.definitions import portbindings
from neutron_lib.callbacks import events
from neutron_lib.callbacks import registry
from neutron_lib.callbacks import resources
from neutron_lib.plugins import directory
from neutron_lib.plugins.ml2 import api
from oslo_config import cfg
from oslo_log import log

from neutron.db import provisioning_blocks

from networking_weft import etcd as etcd_api

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt("etcd_url", default="http://127.0.0.1:2379",
               help="etcd's client URL (http:// or https://)"),
    cfg.StrOpt("prefix", default="/weft", help="the keys' prefix"),
    cfg.StrOpt("ca_file", help="CA of etcd's certificate (PEM)"),
    cfg.StrOpt("cert_file", help="a client certificate, when etcd asks for one (PEM, "
               "without a CN: etcd's JSON gateway refuses one with a CN)"),
    cfg.StrOpt("key_file", help="the key of cert_file"),
    cfg.StrOpt("username", help="etcd user, when etcd's auth is on (it needs readwrite "
               "on the whole prefix)"),
    cfg.StrOpt("password", secret=True, help="that user's password"),
]
cfg.CONF.register_opts(OPTS, "ml2_weft")

VIF_TYPE = "tap"
FABRIC_PORT_FIELDS = ("network_id", "mac_address", "fixed_ips", portbindings.HOST_ID,
                      "device_owner", "security_groups", "port_security_enabled",
                      "allowed_address_pairs")


def network_doc(network, segment):
    return {"id": network["id"], "name": network.get("name", ""),
            "project_id": network.get("project_id") or network.get("tenant_id"),
            "provider:network_type": segment[api.NETWORK_TYPE],
            "provider:segmentation_id": segment.get(api.SEGMENTATION_ID),
            "provider:physical_network": segment.get(api.PHYSICAL_NETWORK),
            "mtu": network.get("mtu") or 1450,
            "revision_number": network.get("revision_number", 0)}


def subnet_doc(subnet):
    return {k: subnet.get(k) for k in ("id", "network_id", "ip_version", "cidr", "gateway_ip",
                                       "enable_dhcp", "revision_number")}


def port_doc(port):
    doc = {"id": port["id"], "revision_number": port.get("revision_number", 0)}
    for field in FABRIC_PORT_FIELDS:
        doc[field] = port.get(field)
    doc["fixed_ips"] = [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                        for ip in port.get("fixed_ips", [])]
    doc["allowed_address_pairs"] = [
        {k: v for k, v in pair.items() if k in ("ip_address", "mac_address")}
        for pair in port.get("allowed_address_pairs") or []]
    if doc["port_security_enabled"] is None:
        doc["port_security_enabled"] = True
    doc["security_groups"] = list(port.get("security_groups") or [])
    return doc


def group_doc(group):
    rules = [{k: rule.get(k) for k in ("id", "direction", "ethertype", "protocol",
                                        "port_range_min", "port_range_max",
                                        "remote_ip_prefix", "remote_group_id")}
             for rule in group.get("security_group_rules", [])]
    return {"id": group["id"], "name": group.get("name", ""),
            "project_id": group.get("project_id") or group.get("tenant_id"),
            "stateful": group.get("stateful", True), "security_group_rules": rules,
            "revision_number": group.get("revision_number", 0)}


def bound_here(port):
    return port.get(portbindings.VIF_TYPE) == VIF_TYPE and port.get(portbindings.HOST_ID)


class WeftMechanismDriver(api.MechanismDriver):

    def initialize(self):
        conf = cfg.CONF.ml2_weft
        self.prefix = conf.prefix.rstrip("/")
        self.etcd = etcd_api.Etcd(conf.etcd_url, conf.ca_file, conf.cert_file, conf.key_file,
                                  conf.username, conf.password)
        self._resync_needed = threading.Event()
        self._resync_needed.set()
        for resource in (resources.SECURITY_GROUP, resources.SECURITY_GROUP_RULE):
            for event in (events.AFTER_CREATE, events.AFTER_UPDATE, events.AFTER_DELETE):
                registry.subscribe(self._security_group_changed, resource, event)
        for target in (self._resync_loop, self._follow_agents, self._follow_status):
            threading.Thread(target=target, daemon=True).start()
        LOG.info("weft: state to %s, prefix %s", conf.etcd_url, self.prefix)

    # -- keys and writes ----------------------------------------------------------

    def key(self, kind, resource_id):
        return "%s/state/%s/%s" % (self.prefix, kind, resource_id)

    def write(self, kind, doc):
        """Writes `doc` unless etcd holds a newer revision_number of it; a
        resync follows when etcd cannot be reached."""
        key = self.key(kind, doc["id"])
        value = json.dumps(doc, sort_keys=True)
        try:
            for _ in range(10):
                held, _ = self.etcd.get(key)
                mod = 0
                if key in held:
                    text, mod = held[key]
                    if text == value:
                        return
                    try:
                        if json.loads(text).get("revision_number", 0) > doc["revision_number"]:
                            return  # a newer one is there: never go back
                    except ValueError:
                        pass
                if self.etcd.put_if_unchanged(key, value, mod):
                    return
        except etcd_api.EtcdError as error:
            LOG.warning("weft: %s; everything is written again once etcd is back", error)
            self._resync_needed.set()

    def remove(self, kind, resource_id):
        try:
            self.etcd.delete(self.key(kind, resource_id))
        except etcd_api.EtcdError as error:
            LOG.warning("weft: %s; everything is written again once etcd is back", error)
            self._resync_needed.set()

    # -- networks, subnets, ports ---------------------------------------------------

    def create_network_postcommit(self, context):
        if context.network_segments:
            self.write("networks", network_doc(context.current, context.network_segments[0]))

    update_network_postcommit = create_network_postcommit

    def delete_network_postcommit(self, context):
        self.remove("networks", context.current["id"])

    def create_subnet_postcommit(self, context):
        self.write("subnets", subnet_doc(context.current))

    update_subnet_postcommit = create_subnet_postcommit

    def delete_subnet_postcommit(self, context):
        self.remove("subnets", context.current["id"])

    def _block_until_wired(self, context):
        # As the OVS agent's driver does: the port turns ACTIVE (and Nova
        # gets network-vif-plugged) only once the node's agent says it is.
        port = context.current
        if context.host and port["status"] != n_const.PORT_STATUS_ACTIVE and \
                context.vif_type == VIF_TYPE:
            provisioning_blocks.add_provisioning_component(
                context._plugin_context, port["id"], resources.PORT,
                provisioning_blocks.L2_AGENT_ENTITY)

    def create_port_precommit(self, context):
        self._block_until_wired(context)

    def update_port_precommit(self, context):
        self._block_until_wired(context)

    def create_port_postcommit(self, context):
        if bound_here(context.current):
            self.write("ports", port_doc(context.current))

    def update_port_postcommit(self, context):
        port, original = context.current, context.original or {}
        if not bound_here(port):
            if bound_here(original):
                self.remove("ports", port["id"])
            return
        # A status change alone (the agent's report coming back) is not the
        # fabric's business: nothing is written for it.
        doc = port_doc(port)
        if bound_here(original):
            before = port_doc(original)
            if all(doc[f] == before[f] for f in FABRIC_PORT_FIELDS):
                return
        self.write("ports", doc)

    def delete_port_postcommit(self, context):
        self.remove("ports", context.current["id"])

    # -- security groups ----------------------------------------------------------

    def _security_group_changed(self, resource, event, trigger, payload=None):
        context = n_context.get_admin_context()
        plugin = directory.get_plugin()
        if resource == resources.SECURITY_GROUP:
            group_id = payload.resource_id
        else:
            rule = (payload.latest_state if payload.latest_state is not None
                    else (payload.states[0] if payload.states else {}))
            group_id = (rule or {}).get("security_group_id") or \
                (payload.metadata or {}).get("security_group_id")
        if not group_id:
            return
        if resource == resources.SECURITY_GROUP and event == events.AFTER_DELETE:
            self.remove("security_groups", group_id)
            return
        try:
            group = plugin.get_security_group(context, group_id)
        except Exception:  # gone meanwhile
            self.remove("security_groups", group_id)
            return
        doc = group_doc(group)
        # A rule's change does not bump the group's revision: make sure the
        # newer set of rules is not taken for an older group.
        doc["revision_number"] = max([doc["revision_number"]] +
                                     [r.get("revision_number", 0)
                                      for r in group.get("security_group_rules", [])])
        self.write("security_groups", doc)

    # -- binding ------------------------------------------------------------------

    def agent(self, host):
        try:
            held, _ = self.etcd.get("%s/agents/%s" % (self.prefix, host))
        except etcd_api.EtcdError as error:
            LOG.warning("weft: cannot ask etcd whether %s has an agent: %s", host, error)
            return None
        key = "%s/agents/%s" % (self.prefix, host)
        if key not in held:
            return None
        try:
            return json.loads(held[key][0])
        except ValueError:
            return None

    def bind_port(self, context):
        agent = self.agent(context.host)
        if agent is None:
            LOG.info("weft: no live weftd on host %s: port %s not bound", context.host,
                     context.current["id"])
            return
        for segment in context.segments_to_bind:
            kind = segment[api.NETWORK_TYPE]
            if kind not in agent.get("network_types", []):
                continue
            if kind in ("vlan", "flat") and \
                    segment.get(api.PHYSICAL_NETWORK) not in agent.get("physical_networks", []):
                continue
            context.set_binding(segment[api.ID], VIF_TYPE, {portbindings.CAP_PORT_FILTER: True})
            return
        LOG.info("weft: host %s cannot carry the segments of port %s", context.host,
                 context.current["id"])

    # -- threads: resync, agents, status ------------------------------------------

    def _resync_loop(self):
        while True:
            self._resync_needed.wait()
            try:
                self.resync()
                self._resync_needed.clear()
            except Exception as error:  # etcd or the database not there yet
                LOG.warning("weft: resync failed (%s); again in 2 s", error)
                time.sleep(2)

    def resync(self):
        """etcd made equal to Neutron's database while Neutron keeps
        changing both: etcd is read before the database, and each key is
        written or removed only if it is still as read. A resource created
        meanwhile (its key newer than the read, or written by its
        postcommit since) is never taken for a stale one, one deleted
        meanwhile never written back over its deletion."""
        context = n_context.get_admin_context()
        plugin = directory.get_plugin()
        held, _ = self.etcd.get(self.prefix + "/state/", prefix=True)
        wanted = {}
        for network in plugin.get_networks(context):
            segment = {api.NETWORK_TYPE: network.get("provider:network_type"),
                       api.SEGMENTATION_ID: network.get("provider:segmentation_id"),
                       api.PHYSICAL_NETWORK: network.get("provider:physical_network")}
            wanted[self.key("networks", network["id"])] = network_doc(network, segment)
        for subnet in plugin.get_subnets(context):
            wanted[self.key("subnets", subnet["id"])] = subnet_doc(subnet)
        for port in plugin.get_ports(context):
            if bound_here(port):
                wanted[self.key("ports", port["id"])] = port_doc(port)
        for group in plugin.get_security_groups(context):
            wanted[self.key("security_groups", group["id"])] = group_doc(group)
        removed = 0
        for key, (_, mod_revision) in held.items():
            if key not in wanted and not key.startswith(self.prefix + "/state/nodes/"):
                removed += self.etcd.delete_if_unchanged(key, mod_revision)
        for key, doc in wanted.items():
            value = json.dumps(doc, sort_keys=True)
            text, mod_revision = held.get(key, (None, 0))
            if text != value:
                self.etcd.put_if_unchanged(key, value, mod_revision)
        LOG.info("weft: resync: %d resources in etcd, %d stale keys removed", len(wanted),
                 removed)

    def _follow(self, prefix, on_change):
        """Reads `prefix` whole, then follows it; again from scratch after
        any failure (etcd away, or compacted past the watch)."""
        while True:
            try:
                held, revision = self.etcd.get(prefix, prefix=True)
                for key, (value, _) in held.items():
                    on_change("PUT", key, value)
                for kind, key, value, _ in self.etcd.watch(prefix, revision + 1):
                    on_change(kind, key, value)
            except Exception as error:
                LOG.warning("weft: following %s: %s; again in 1 s", prefix, error)
                self._resync_needed.set()
                time.sleep(1)

    def _follow_agents(self):
        def changed(kind, key, value):
            if kind == "DELETE":
                return  # the node stays known: its VTEP still holds its ports
            try:
                agent = json.loads(value)
            except ValueError:
                return
            host = key.rsplit("/", 1)[-1]
            if agent.get("tunnel_ip"):
                node = json.dumps({"name": host, "tunnel_ip": agent["tunnel_ip"]},
                                  sort_keys=True)
                node_key = self.key("nodes", host)
                held, _ = self.etcd.get(node_key)
                if held.get(node_key, (None,))[0] != node:
                    self.etcd.put(node_key, node)
                    LOG.info("weft: node %s, VTEP %s", host, agent["tunnel_ip"])
        self._follow(self.prefix + "/agents/", changed)

    def _follow_status(self):
        def changed(kind, key, value):
            if kind == "DELETE":
                return
            try:
                status = json.loads(value).get("status")
            except ValueError:
                return
            port_id = key.rsplit("/", 1)[-1]
            if status == n_const.PORT_STATUS_ACTIVE:
                provisioning_blocks.provisioning_complete(
                    n_context.get_admin_context(), port_id, resources.PORT,
                    provisioning_blocks.L2_AGENT_ENTITY)
        self._follow(self.prefix + "/status/", changed)
