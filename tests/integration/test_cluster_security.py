"""A three-broker cluster secured end to end: clients authenticate (each broker serves a
SASL_SSL listener, SCRAM-SHA-512 over TLS, beside its PLAINTEXT one) and the brokers talk to
each other over mutual TLS on the cluster port (Raft, controller, replication), each known by
the node id its certificate names. The cluster fault test's idempotent acks=all producer and
its consumers run over SASL_SSL while the leader is killed with SIGKILL and restarted. Nothing
acknowledged may be lost, exactly as on PLAINTEXT."""
from __future__ import annotations

import pytest

from faults import (ACK_TIMEOUT_S, PARTITIONS, TOPIC_CONFIG, WARM_UP_ACKS, check_nothing_lost,
                    fault_the_leader)
from harness import free_port
from security import ADMIN_PASSWORD, Pki
from workload import Workload

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_a_killed_leader_loses_nothing_for_clients_on_sasl_ssl(cluster_factory, tmp_path):
    pki = Pki(tmp_path / "pki")
    keystore = pki.keystore("broker", "/CN=localhost/O=Krait")
    sasl_ports = {i: free_port() for i in (1, 2, 3)}

    def node_args(i: int) -> list[str]:
        props = tmp_path / f"broker{i}.properties"
        # The PLAINTEXT listener's address comes from the harness's --listen (flags win).
        props.write_text(f"""listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:{sasl_ports[i]}
ssl.keystore.location={keystore}
sasl.enabled.mechanisms=SCRAM-SHA-512
""")
        cluster_keystore = pki.keystore(f"node{i}", f"/CN=broker-{i}/O=Krait", node_id=i)
        return ["--config", str(props), "--add-scram", f"SCRAM-SHA-512=[name=admin,password={ADMIN_PASSWORD}]",
                "--cluster-tls-keystore", str(cluster_keystore), "--cluster-tls-truststore", str(pki.ca)]

    cluster = cluster_factory(3, node_args=node_args)
    topic = cluster.create_topic(PARTITIONS, 3, TOPIC_CONFIG)
    sasl_bootstrap = ",".join(f"127.0.0.1:{p}" for p in sasl_ports.values())
    client = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "admin",
              "sasl.password": ADMIN_PASSWORD, "ssl.ca.location": str(pki.ca)}
    with Workload(sasl_bootstrap, topic, PARTITIONS, client_conf=client) as work:
        work.wait_for_acks(WARM_UP_ACKS, ACK_TIMEOUT_S, "before the fault")
        fault_the_leader(cluster, topic, work, "killed", cluster.kill9, cluster.restart)
    check_nothing_lost(cluster, topic, work)
    for node in cluster.nodes.values():
        assert "cluster port: mutual TLS" in node.broker.log_text(), f"broker {node.id}"
