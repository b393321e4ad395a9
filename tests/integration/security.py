"""Certificates and secured brokers for the security tests.

`Pki` makes a certificate authority and certificates with the openssl command (as an operator
or a user would), `secured_broker` starts a krait-broker from a Kafka `server.properties` with
SASL_SSL, SASL_PLAINTEXT and SSL listeners and ACLs on, and the `*_conf` helpers give each
client library's settings for one listener; `produce` writes records with them and reports
each delivery.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from harness import free_port

ADMIN_PASSWORD = "admin-secret"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
TIMEOUT = 30


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    """A CA in `directory` and the certificates it signs (EC P-256 keys, valid for two days)."""

    def __init__(self, directory: Path, name: str = "krait-test-ca"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca = self.dir / f"{name}.pem"
        self.ca_key = self.dir / f"{name}.key"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(self.ca_key), "-out", str(self.ca), "-days", "2", "-subj", f"/CN={name}",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                cwd=self.dir)

    def issue(self, name: str, subject: str, server: bool = False, node_id: int | None = None,
              days: int = 2) -> tuple[Path, Path]:
        """(certificate, key) for `subject` (e.g. "/CN=alice/O=Krait"); a server certificate
        names localhost and 127.0.0.1; a broker's cluster certificate (`node_id`) is for both
        ends of the cluster port and names the node id as the URI urn:krait:node:<id>."""
        key, csr, cert, ext = (self.dir / f"{name}.{s}" for s in ("key", "csr", "pem", "ext"))
        usage = "serverAuth,clientAuth" if node_id is not None else "serverAuth" if server else "clientAuth"
        lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
                 f"extendedKeyUsage={usage}"]
        if node_id is not None:
            lines.append(f"subjectAltName=DNS:localhost,IP:127.0.0.1,URI:urn:krait:node:{node_id}")
        elif server:
            lines.append("subjectAltName=DNS:localhost,IP:127.0.0.1")
        ext.write_text("\n".join(lines) + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                "-out", str(csr), "-subj", subject, cwd=self.dir)
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext), cwd=self.dir)
        return cert, key

    def keystore(self, name: str, subject: str, node_id: int | None = None, days: int = 2) -> Path:
        """A broker keystore: one PEM file with the private key and the certificate chain (for
        the cluster port when `node_id` is given), valid `days`."""
        cert, key = self.issue(name, subject, server=True, node_id=node_id, days=days)
        store = self.dir / f"{name}-keystore.pem"
        store.write_text(key.read_text() + cert.read_text())
        return store


@dataclass
class SecuredBroker:
    broker: object
    pki: Pki
    sasl_ssl: str
    sasl_plaintext: str
    ssl: str
    keystore: Path


def secured_broker(broker_factory, pki: Pki, tmp_path: Path, extra: str = "") -> SecuredBroker:
    """A broker whose primary listener is SASL_SSL (SCRAM), with a SASL_PLAINTEXT listener
    (PLAIN and SCRAM-SHA-256) and an SSL listener that requires client certificates; ACLs on,
    super users `admin` (SCRAM, created by --add-scram) and the certificate `CN=admin`."""
    ports = [free_port() for _ in range(3)]
    keystore = pki.keystore("broker", "/CN=localhost/O=Krait")
    props = tmp_path / "server.properties"
    props.write_text(f"""# Kafka's own keys, as a platform team writes them.
listeners=SASL_SSL://127.0.0.1:{ports[0]},SASL_PLAINTEXT://127.0.0.1:{ports[1]},SSL://127.0.0.1:{ports[2]}
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={pki.ca}
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
authorizer.class.name={AUTHORIZER}
super.users=User:admin;User:CN=admin
{extra}
""")
    users = f"SCRAM-SHA-512=[name=admin,password={ADMIN_PASSWORD}];SCRAM-SHA-256=[name=admin,password={ADMIN_PASSWORD}]"
    b = broker_factory(port=ports[0], args=["--config", str(props), "--add-scram", users])
    return SecuredBroker(b, pki, f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}", f"127.0.0.1:{ports[2]}",
                         keystore)


def scram_conf(s: SecuredBroker, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> dict:
    """confluent-kafka (librdkafka) settings for the SASL_SSL listener."""
    return {"bootstrap.servers": s.sasl_ssl, "security.protocol": "SASL_SSL", "sasl.mechanisms": mechanism,
            "sasl.username": user, "sasl.password": password, "ssl.ca.location": str(s.pki.ca)}


def plain_conf(s: SecuredBroker, user: str, password: str) -> dict:
    """confluent-kafka settings for the SASL_PLAINTEXT listener with PLAIN."""
    return {"bootstrap.servers": s.sasl_plaintext, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": password}


def cert_conf(s: SecuredBroker, cert: Path, key: Path) -> dict:
    """confluent-kafka settings for the SSL listener with a client certificate."""
    return {"bootstrap.servers": s.ssl, "security.protocol": "SSL", "ssl.ca.location": str(s.pki.ca),
            "ssl.certificate.location": str(cert), "ssl.key.location": str(key)}


def admin_conf(s: SecuredBroker) -> dict:
    return scram_conf(s, "admin", ADMIN_PASSWORD)


def produce(conf: dict, topic: str, count: int) -> list:
    """Produces `count` records and returns the delivery errors (None for each success)."""
    p = Producer({**conf, "linger.ms": 5, "message.timeout.ms": 15000})
    errors = []
    for i in range(count):
        p.produce(topic, value=f"v{i}".encode(), on_delivery=lambda err, msg: errors.append(err))
        p.poll(0)
    assert p.flush(TIMEOUT) == 0
    return errors
