"""The broker accepts the command line and environment the operator's StatefulSet gives it
(`operator/reconciler/src/cluster/build/statefulset.rs`, `broker_args` / `broker_env`): node ids
from 0 taken from `KRAIT_NODE_ID`, `--flag=value` spellings, `--voters` naming every broker's
cluster listener, `--rack-file` naming the file the pod's rack init container writes, the
external listener, and the ConfigMap's
`KRAIT_DEFAULT_REPLICATION_FACTOR` / `KRAIT_MIN_INSYNC_REPLICAS`, and the cluster port's mutual TLS
(`--cluster-tls-keystore=` / `--cluster-tls-truststore=`, a keystore per broker naming its node id, as
the operator mounts them). Loopback addresses stand in for the pods' DNS names."""
import json
import urllib.request

from harness import Broker, free_port, kcat, unique, wait_until
from security import Pki


def test_three_brokers_started_as_the_operator_starts_them_form_one_cluster(tmp_path, broker_bin, request):
    ids = [0, 1, 2]
    kafka = {i: free_port() for i in ids}
    cluster = {i: free_port() for i in ids}
    external = {i: free_port() for i in ids}
    http = {i: free_port() for i in ids}
    voters = ",".join(f"{i}@127.0.0.1:{cluster[i]}" for i in ids)
    pki = Pki(tmp_path / "pki")
    brokers = []
    request.node.krait_brokers = brokers
    for i in ids:
        # What `krait-operator rack` writes: the Node's label and a newline.
        rack = tmp_path / f"rack{i}"
        rack.write_text(f"zone-{i}\n")
        args = [
            f"--advertise=127.0.0.1:{kafka[i]}",
            f"--http-listen=127.0.0.1:{http[i]}",
            f"--cluster-listen=127.0.0.1:{cluster[i]}",
            f"--cluster-tls-keystore={pki.keystore(f'main-{i}', f'/CN=main-{i}/O=krait.dev', node_id=i)}",
            f"--cluster-tls-truststore={pki.ca}",
            f"--voters={voters}",
            f"--rack-file={rack}",
            f"--external-listen=127.0.0.1:{external[i]}",
            "--external-advertised-addresses=" + ",".join(f"localhost:{external[j]}" for j in ids),
        ]
        env = {"KRAIT_NODE_ID": str(i), "KRAIT_DEFAULT_REPLICATION_FACTOR": "3",
               "KRAIT_MIN_INSYNC_REPLICAS": "2"}
        b = Broker(broker_bin, tmp_path / f"b{i}" / "data", tmp_path / f"b{i}.log",
                   port=kafka[i], args=args, env=env)
        brokers.append(b)
        b.spawn()
    try:
        for b in brokers:
            b.wait_ready()
        for i in ids:
            with urllib.request.urlopen(f"http://127.0.0.1:{http[i]}/readyz", timeout=10) as r:
                assert r.status == 200
        md = json.loads(kcat(brokers[0].bootstrap, "-L", "-J", timeout=30).stdout)
        assert sorted(b["id"] for b in md["brokers"]) == ids
        assert md["controllerid"] in ids
        # A topic auto-created with the ConfigMap's defaults is replicated three ways, one
        # replica per rack.
        name = unique("op")
        kcat(brokers[1].bootstrap, "-P", "-t", name, input="a\nb\n", timeout=60)
        md = json.loads(kcat(brokers[2].bootstrap, "-L", "-J", "-t", name, timeout=30).stdout)
        (partition,) = md["topics"][0]["partitions"]
        assert sorted(r["id"] for r in partition["replicas"]) == ids
        # The external listener hands out the external addresses.
        ext = json.loads(kcat(f"127.0.0.1:{external[0]}", "-L", "-J", timeout=30).stdout)
        assert sorted(b["name"] for b in ext["brokers"]) == sorted(f"localhost:{external[j]}" for j in ids)
        out = kcat(brokers[0].bootstrap, "-C", "-t", name, "-c", "2", "-e", timeout=60).stdout
        assert out.split() == [b"a", b"b"]
        for b in brokers:
            assert "cluster port: mutual TLS" in b.log_text()
    finally:
        for b in brokers:
            b.stop()
