"""TLS, mTLS, SASL (SCRAM-SHA-256/512, PLAIN) and ACLs, with real clients against a real broker
configured from a Kafka server.properties: kcat and confluent-kafka (librdkafka), kafka-python,
and raw sockets for what no client would send."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   NewTopic, ResourcePatternType, ResourceType, ScramCredentialInfo,
                                   ScramMechanism, UserScramCredentialUpsertion)

from harness import KeptAdminClient, kcat, unique, wait_until
from kafka_wire import KafkaConnection, api_versions, array, i32, string
from security import ADMIN_PASSWORD, Pki, admin_conf, cert_conf, plain_conf, produce, scram_conf

TIMEOUT = 30


def admin(conf: dict) -> KeptAdminClient:
    return KeptAdminClient(dict(conf))


def set_password(s, user: str, password: str, mechanisms=(ScramMechanism.SCRAM_SHA_512,)) -> None:
    a = admin(admin_conf(s))
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(m, 4096), password.encode())
               for m in mechanisms]
    for f in a.alter_user_scram_credentials(upserts).values():
        f.result(timeout=TIMEOUT)


def grant(s, *bindings: AclBinding) -> None:
    a = admin(admin_conf(s))
    for f in a.create_acls(list(bindings)).values():
        f.result(timeout=TIMEOUT)


def topic_acl(topic: str, principal: str, operation, permission=AclPermissionType.ALLOW,
              pattern=ResourcePatternType.LITERAL) -> AclBinding:
    return AclBinding(ResourceType.TOPIC, topic, pattern, principal, "*", operation, permission)


def group_acl(group: str, principal: str) -> AclBinding:
    return AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL, principal, "*",
                      AclOperation.READ, AclPermissionType.ALLOW)


def create_topic(s, name: str, partitions: int = 1) -> str:
    a = admin(admin_conf(s))
    a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=TIMEOUT)
    return name


def consume(conf: dict, topic: str, expected: int, group: str | None = None) -> list[bytes]:
    """Reads partition 0 from the beginning until `expected` records: as a member of `group`
    when given, else by assignment (librdkafka still looks up the coordinator of its random
    group id, so the principal needs DESCRIBE on groups: a group ACL)."""
    c = Consumer({**conf, "group.id": group or unique("g"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    try:
        if group:
            c.subscribe([topic])
        else:
            c.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = time.monotonic() + TIMEOUT
        while len(values) < expected and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            values.append(m.value())
        if group:
            c.commit(asynchronous=False)
        return values
    finally:
        c.close()


def auth_error(conf: dict) -> KafkaError:
    """The error librdkafka reports when `conf` cannot connect: waits for the first one."""
    seen = []
    p = Producer({**conf, "error_cb": seen.append, "reconnect.backoff.max.ms": 1000})
    wait_until(lambda: p.poll(0.2) is not None and bool(seen), TIMEOUT, "a connection error")
    return seen[0]


# ------------------------------------------------------------------ authentication

def test_scram_sha_512_over_sasl_ssl_with_confluent_kafka(secured):
    set_password(secured, "alice", "alice-pw")
    topic = create_topic(secured, unique("scram"))
    group = unique("alice-group")
    grant(secured, topic_acl(topic, "User:alice", AclOperation.WRITE),
          topic_acl(topic, "User:alice", AclOperation.READ), group_acl(group, "User:alice"))
    conf = scram_conf(secured, "alice", "alice-pw")
    assert produce(conf, topic, 200) == [None] * 200
    values = consume(conf, topic, 200, group=group)
    assert values == [f"v{i}".encode() for i in range(200)]


def test_scram_sha_256_and_plain_share_one_user_store(secured):
    set_password(secured, "bob", "bob-pw", mechanisms=(ScramMechanism.SCRAM_SHA_256,))
    topic = create_topic(secured, unique("plain"))
    grant(secured, topic_acl(topic, "User:bob", AclOperation.ALL), group_acl("*", "User:bob"))
    sha256 = scram_conf(secured, "bob", "bob-pw", mechanism="SCRAM-SHA-256")
    assert produce(sha256, topic, 10) == [None] * 10
    # PLAIN on the SASL_PLAINTEXT listener checks the same stored credential.
    assert produce(plain_conf(secured, "bob", "bob-pw"), topic, 10) == [None] * 10
    assert len(consume(plain_conf(secured, "bob", "bob-pw"), topic, 20)) == 20


def test_kcat_over_sasl_plaintext_with_plain_and_sasl_ssl_with_scram(secured):
    topic = create_topic(secured, unique("kcat"))
    plain = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
             "-X", "sasl.username=admin", "-X", f"sasl.password={ADMIN_PASSWORD}"]
    kcat(secured.sasl_plaintext, "-P", "-t", topic, *plain, input="one\ntwo\nthree\n")
    scram = ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
             "-X", "sasl.username=admin", "-X", f"sasl.password={ADMIN_PASSWORD}",
             "-X", f"ssl.ca.location={secured.pki.ca}"]
    out = kcat(secured.sasl_ssl, "-C", "-t", topic, "-o", "beginning", "-c", "3", "-e", *scram)
    assert out.stdout.split() == [b"one", b"two", b"three"]


@pytest.mark.parametrize("transport", ["SSL with a client certificate", "SASL_SSL with SCRAM-SHA-512",
                                       "SASL_PLAINTEXT with PLAIN"])
def test_kafka_python_produces_and_consumes(secured, transport):
    from kafka import KafkaConsumer, KafkaProducer
    topic = create_topic(secured, unique("kp"))
    if transport.startswith("SSL"):
        cert, key = secured.pki.issue("carol", "/CN=carol/O=Krait")
        # Kafka's principal for a certificate is its subject DN, in RFC 2253 order.
        principal = "User:O=Krait,CN=carol"
        conf = dict(bootstrap_servers=secured.ssl, security_protocol="SSL", ssl_cafile=str(secured.pki.ca),
                    ssl_certfile=str(cert), ssl_keyfile=str(key))
    else:
        set_password(secured, "carol", "carol-pw")
        principal = "User:carol"
        scram = transport.startswith("SASL_SSL")
        conf = dict(bootstrap_servers=secured.sasl_ssl if scram else secured.sasl_plaintext,
                    security_protocol="SASL_SSL" if scram else "SASL_PLAINTEXT",
                    sasl_mechanism="SCRAM-SHA-512" if scram else "PLAIN",
                    sasl_plain_username="carol", sasl_plain_password="carol-pw")
        if scram:
            conf["ssl_cafile"] = str(secured.pki.ca)
    grant(secured, topic_acl(topic, principal, AclOperation.ALL))
    p = KafkaProducer(**conf)
    for i in range(20):
        p.send(topic, f"m{i}".encode()).get(timeout=TIMEOUT)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **conf)
    values = [m.value for _, m in zip(range(20), c)]
    c.close()
    assert values == [f"m{i}".encode() for i in range(20)]


def test_kcat_over_ssl_with_a_client_certificate(secured):
    cert, key = secured.pki.issue("dan", "/CN=dan")
    topic = create_topic(secured, unique("kcat-tls"))
    grant(secured, topic_acl(topic, "User:CN=dan", AclOperation.ALL))
    tls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={secured.pki.ca}",
           "-X", f"ssl.certificate.location={cert}", "-X", f"ssl.key.location={key}"]
    kcat(secured.ssl, "-P", "-t", topic, *tls, input="a\nb\n")
    out = kcat(secured.ssl, "-C", "-t", topic, "-o", "beginning", "-c", "2", "-e", *tls)
    assert out.stdout.split() == [b"a", b"b"]


# ------------------------------------------------------------------ refused logins

def test_a_wrong_password_and_an_unknown_user_are_refused(secured):
    set_password(secured, "dave", "right")
    for conf in (scram_conf(secured, "dave", "wrong"), scram_conf(secured, "nobody", "x"),
                 plain_conf(secured, "dave", "wrong")):
        err = auth_error(conf)
        assert err.code() == KafkaError._AUTHENTICATION, err
    assert "Invalid username or password" in str(auth_error(scram_conf(secured, "dave", "wrong")))


def test_a_plaintext_client_on_a_tls_port_gets_nothing(secured):
    with KafkaConnection(secured.sasl_ssl) as conn:
        conn.send_request(18, 0, b"")
        try:
            data = conn.sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            data = b""
        # A TLS server answers a non-TLS hello with an alert or a close, never a Kafka response.
        assert not data or data[0] == 0x15, data[:16]
    secured.broker.assert_alive()


def test_a_certificate_from_another_ca_is_refused(secured, tmp_path):
    rogue = Pki(tmp_path / "rogue", name="rogue-ca")
    cert, key = rogue.issue("mallory", "/CN=admin")
    err = auth_error(cert_conf(secured, cert, key))
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), err
    # Without a client certificate the SSL listener refuses too (ssl.client.auth=required).
    ctx = ssl.create_default_context(cafile=str(secured.pki.ca))
    host, port = secured.ssl.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.3 reports the missing certificate on the first read after the handshake.
                s.sendall(i32(10) + b"\x00\x12\x00\x00\x00\x00\x00\x01\xff\xff")
                if not s.recv(4096):
                    raise ConnectionResetError("closed without an answer")


def test_a_request_before_authentication_closes_the_connection(secured):
    with KafkaConnection(secured.sasl_plaintext) as conn:
        assert api_versions(conn).error_code == 0, "ApiVersions is answered before authentication"
        conn.send_request(3, 1, array(["anything"], string))  # Metadata v1
        assert conn.closed_by_peer(10), "a Metadata request before SASL must close the connection"
    secured.broker.assert_alive()


# ------------------------------------------------------------------ authorization

def test_every_client_api_is_refused_without_its_acl(secured):
    set_password(secured, "erin", "erin-pw")
    topic = create_topic(secured, unique("noacl"))
    conf = scram_conf(secured, "erin", "erin-pw")
    errors = produce(conf, topic, 3)
    assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors
    # A member of a group it may use, subscribed to a topic it may not read.
    grant(secured, group_acl("erin-group", "User:erin"))
    with pytest.raises(KafkaException) as read:
        consume(conf, topic, 1, group="erin-group")
    assert read.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Metadata lists only the topics the principal may describe.
    md = admin(conf).list_topics(timeout=TIMEOUT)
    assert topic not in md.topics
    f = admin(conf).create_topics([NewTopic(unique("denied"), 1, 1)])
    with pytest.raises(KafkaException) as created:
        next(iter(f.values())).result(timeout=TIMEOUT)
    assert created.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    grant(secured, topic_acl(topic, "User:erin", AclOperation.READ))
    with pytest.raises(KafkaException) as group:
        consume(conf, topic, 1, group=unique("other-group"))
    assert group.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_deny_wins_over_allow_and_prefixed_acls_cover_their_prefix(secured):
    set_password(secured, "frank", "frank-pw")
    prefix = unique("team-a")
    allowed, denied = create_topic(secured, f"{prefix}.orders"), create_topic(secured, f"{prefix}.payroll")
    grant(secured, topic_acl(prefix, "User:frank", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
          topic_acl(denied, "User:frank", AclOperation.WRITE, permission=AclPermissionType.DENY))
    conf = scram_conf(secured, "frank", "frank-pw")
    assert produce(conf, allowed, 5) == [None] * 5
    errors = produce(conf, denied, 2)
    assert all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors


def test_deleting_an_acl_revokes_access_at_once(secured):
    set_password(secured, "grace", "grace-pw")
    topic = create_topic(secured, unique("revoke"))
    binding = topic_acl(topic, "User:grace", AclOperation.WRITE)
    grant(secured, binding)
    conf = scram_conf(secured, "grace", "grace-pw")
    p = Producer({**conf, "linger.ms": 0, "message.timeout.ms": 15000})
    results = []
    p.produce(topic, b"before", on_delivery=lambda e, m: results.append(e))
    assert p.flush(TIMEOUT) == 0 and results == [None]
    a = admin(admin_conf(secured))
    deleted = a.delete_acls([AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL,
                                              "User:grace", "*", AclOperation.ANY, AclPermissionType.ANY)])
    assert len(next(iter(deleted.values())).result(timeout=TIMEOUT)) == 1
    # The same connection is refused on its next request.
    p.produce(topic, b"after", on_delivery=lambda e, m: results.append(e))
    assert p.flush(TIMEOUT) == 0
    assert results[1] is not None and results[1].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_user_cannot_grant_itself_acls_or_create_users(secured):
    set_password(secured, "heidi", "heidi-pw")
    conf = scram_conf(secured, "heidi", "heidi-pw")
    a = admin(conf)
    f = a.create_acls([topic_acl("*", "User:heidi", AclOperation.ALL)])
    with pytest.raises(KafkaException) as acl:
        next(iter(f.values())).result(timeout=TIMEOUT)
    assert acl.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    upsert = UserScramCredentialUpsertion("heidi2", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"pw")
    with pytest.raises(KafkaException) as user:
        next(iter(a.alter_user_scram_credentials([upsert]).values())).result(timeout=TIMEOUT)
    assert user.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # The super user sees what it holds: one ACL set, the users and their mechanisms.
    described = admin(admin_conf(secured)).describe_user_scram_credentials().result(timeout=TIMEOUT)
    assert {"admin", "heidi"} <= set(described)
    assert "heidi2" not in described


def test_the_certificate_super_user_administers_over_mtls(secured):
    cert, key = secured.pki.issue("root", "/CN=admin")
    a = admin(cert_conf(secured, cert, key))
    name = unique("by-cert")
    a.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=TIMEOUT)
    acls = a.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                            AclOperation.ANY, AclPermissionType.ANY)).result(timeout=TIMEOUT)
    assert acls == []


# ------------------------------------------------------------------ certificates

def served_certificate(address: str, ca) -> dict:
    host, port = address.split(":")
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert()


def test_a_rotated_certificate_is_served_without_dropping_connections(secured):
    before = served_certificate(secured.sasl_ssl, secured.pki.ca)
    conf = admin_conf(secured)
    topic = create_topic(secured, unique("rotate"))
    p = Producer({**conf, "linger.ms": 0})
    results = []
    p.produce(topic, b"before", on_delivery=lambda e, m: results.append(e))
    assert p.flush(TIMEOUT) == 0
    # Kubernetes rewrites the mounted Secret in place; the broker picks the new files up.
    rotated = secured.pki.keystore("broker-rotated", "/CN=localhost/O=Krait/OU=rotated")
    secured.keystore.write_text(rotated.read_text())
    wait_until(lambda: served_certificate(secured.sasl_ssl, secured.pki.ca)["serialNumber"] != before["serialNumber"],
               TIMEOUT, "the rotated certificate to be served")
    # The connection opened before the rotation still works.
    p.produce(topic, b"after", on_delivery=lambda e, m: results.append(e))
    assert p.flush(TIMEOUT) == 0
    assert results == [None, None]
