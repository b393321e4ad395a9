"""The krait CLI against a secured broker through `--command-config`: Java-style client
properties over SASL_SSL (SCRAM-SHA-512) and SSL (client certificate), users and ACLs managed
with `krait user` and `krait acl` and taking effect for confluent-kafka clients, `perf`
over SASL_SSL, and a clear failure for a wrong password."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import Cli, unique, wait_until
from security import ADMIN_PASSWORD, produce, scram_conf

TIMEOUT = 30
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


def scram_properties(path: Path, s, user: str, password: str) -> Path:
    """A Java client's properties for the SASL_SSL listener, as kafka-topics.sh takes them."""
    # Escaped twice, as in a Java properties file: for the JAAS quoted string, then for the
    # properties format, which reads backslashes first.
    jaas = password.replace("\\", "\\\\").replace('"', '\\"')
    escaped = jaas.replace("\\", "\\\\")
    path.write_text(f"""# Java names, as for kafka-topics.sh --command-config
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config={SCRAM_MODULE} required \\
    username="{user}" password="{escaped}";
ssl.truststore.type=PEM
ssl.truststore.location={s.pki.ca}
""")
    return path


@pytest.fixture
def admin_cli(secured, cli_bin, tmp_path):
    """`krait --command-config admin.properties` on the SASL_SSL listener, as User:admin."""
    props = scram_properties(tmp_path / "admin.properties", secured, "admin", ADMIN_PASSWORD)
    return lambda *args, **kw: Cli(cli_bin, secured.sasl_ssl)("--command-config", str(props), *args, **kw)


def json_of(cp) -> object:
    import json
    return json.loads(cp.stdout.decode())


def topic_lifecycle(run) -> None:
    name = unique("sec")
    out = run("topic", "create", name, "--partitions", "2")
    assert f"Created topic {name}." in out.stdout.decode()
    listed = {t["topic"] for t in json_of(run("-o", "json", "topic", "list"))}
    assert name in listed
    described = json_of(run("-o", "json", "topic", "describe", name))
    assert [p["partition"] for p in described["partition_details"]] == [0, 1]
    run("topic", "delete", name)
    wait_until(lambda: name not in {t["topic"] for t in json_of(run("-o", "json", "topic", "list"))},
               TIMEOUT, f"topic {name} to disappear")


def test_topics_over_sasl_ssl_with_java_scram_properties(admin_cli):
    topic_lifecycle(admin_cli)


def test_topics_over_ssl_with_a_client_certificate(secured, cli_bin, tmp_path):
    cert, key = secured.pki.issue("admin-client", "/CN=admin")
    keystore = tmp_path / "admin-keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text())
    props = tmp_path / "ssl.properties"
    props.write_text(f"""security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={secured.pki.ca}
ssl.endpoint.identification.algorithm=https
""")
    cli = Cli(cli_bin, secured.ssl)
    topic_lifecycle(lambda *args, **kw: cli("--command-config", str(props), *args, **kw))


def test_a_user_set_with_the_cli_logs_in_and_is_described_and_deleted(admin_cli, secured, cli_bin, tmp_path):
    user, password = unique("carol"), 'pw "quoted" \\ back'
    topic = unique("carol-topic")
    admin_cli("topic", "create", topic)
    out = admin_cli("user", "set-password", user, input=password + "\n")
    assert f"set the SCRAM-SHA-512 password of user {user}" in out.stdout.decode()
    password_file = tmp_path / "pw"
    password_file.write_text(password + "\n")
    admin_cli("user", "set-password", user, "--mechanism", "SCRAM-SHA-256", "--iterations", "8192",
              "--password-file", str(password_file))
    described = json_of(admin_cli("-o", "json", "user", "describe", user))
    assert [d["user"] for d in described] == [user]
    assert sorted((c["mechanism"], c["iterations"]) for c in described[0]["credentials"]) == [
        ("SCRAM-SHA-256", 8192), ("SCRAM-SHA-512", 4096)]
    admin_cli("acl", "add", "--allow-principal", f"User:{user}", "--operation", "write", "--topic", topic)
    # The new user logs in with confluent-kafka, with either mechanism, and its ACL lets it write.
    assert produce(scram_conf(secured, user, password), topic, 5) == [None] * 5
    assert produce(scram_conf(secured, user, password, "SCRAM-SHA-256"), topic, 5) == [None] * 5
    # And through the CLI with its own Java-style properties (the escaped quotes and backslash
    # of the password survive sasl.jaas.config).
    props = scram_properties(tmp_path / "user.properties", secured, user, password)
    out = Cli(cli_bin, secured.sasl_ssl)("--command-config", str(props), "produce", topic, input="a\nb\n")
    assert "Produced 2 records." in out.stderr.decode()
    deleted = json_of(admin_cli("-o", "json", "user", "delete", user))
    assert sorted(deleted["mechanisms"]) == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    gone = admin_cli("user", "describe", user, check=False)
    assert gone.returncode != 0 and f"describing user {user}" in gone.stderr.decode()
    refused = Cli(cli_bin, secured.sasl_ssl)("--timeout-ms", "5000", "--command-config", str(props),
                                             "user", "describe", check=False)
    assert refused.returncode != 0 and "authentication" in refused.stderr.decode().lower()


def test_acls_added_listed_and_removed_with_the_cli_take_effect(admin_cli, secured):
    user, password = unique("dave"), "dave-pw"
    topic = unique("dave-topic")
    admin_cli("topic", "create", topic)
    admin_cli("user", "set-password", user, "--password", password)
    conf = scram_conf(secured, user, password)
    denied = produce(conf, topic, 1)
    assert denied[0] is not None and "authoriz" in str(denied[0]).lower(), denied

    admin_cli("acl", "add", "--allow-principal", f"User:{user}", "--operation", "WRITE",
              "--operation", "DESCRIBE", "--topic", topic[:8], "--resource-pattern-type", "prefixed")
    listed = json_of(admin_cli("-o", "json", "acl", "list", "--principal", f"User:{user}"))
    assert sorted((a["resource_type"], a["resource_name"], a["pattern_type"], a["operation"], a["permission"])
                  for a in listed) == [("TOPIC", topic[:8], "PREFIXED", "DESCRIBE", "ALLOW"),
                                       ("TOPIC", topic[:8], "PREFIXED", "WRITE", "ALLOW")]
    table = admin_cli("acl", "list", "--topic", topic, "--resource-pattern-type", "match").stdout.decode()
    assert f"User:{user}" in table and "PREFIXED" in table
    assert produce(conf, topic, 3) == [None] * 3

    removed = json_of(admin_cli("-o", "json", "acl", "remove", "--principal", f"User:{user}",
                                "--operation", "write"))
    assert [(a["operation"], a["principal"]) for a in removed] == [("WRITE", f"User:{user}")]
    assert [a["operation"] for a in json_of(admin_cli("-o", "json", "acl", "list", "--principal", f"User:{user}"))] \
        == ["DESCRIBE"]
    again = produce(conf, topic, 1)
    assert again[0] is not None and "authoriz" in str(again[0]).lower(), again


def test_perf_produce_over_sasl_ssl(admin_cli):
    topic = unique("perf")
    admin_cli("topic", "create", topic)
    report = json_of(admin_cli("-o", "json", "perf", "produce", "--topic", topic, "--num-records", "2000",
                               "--record-size", "100"))
    assert report["records"] == 2000, report
    consumed = json_of(admin_cli("-o", "json", "perf", "consume", "--topic", topic, "--num-records", "2000"))
    assert consumed["records"] == 2000, consumed


def test_a_wrong_password_fails_clearly(secured, cli_bin, tmp_path):
    props = scram_properties(tmp_path / "wrong.properties", secured, "admin", "not-the-password")
    cli = Cli(cli_bin, secured.sasl_ssl)
    # krait-admin (user describe) and librdkafka (topic list) both report the failed login.
    started = time.monotonic()
    admin_path = cli("--timeout-ms", "5000", "--command-config", str(props), "user", "describe", check=False)
    assert admin_path.returncode != 0
    err = admin_path.stderr.decode()
    assert "authentication" in err.lower() and "SCRAM-SHA-512" in err, err
    rd_path = cli("--timeout-ms", "5000", "--command-config", str(props), "topic", "list", check=False)
    assert rd_path.returncode != 0
    assert "authentication" in rd_path.stderr.decode().lower(), rd_path.stderr.decode()
    assert time.monotonic() - started < 60
