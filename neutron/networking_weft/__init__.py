"""Neutron's ML2 side of weft: the mechanism driver that writes networks,
subnets, bound ports and security groups into etcd for the nodes' weftd."""
