//! Java client properties become librdkafka settings and krait-admin security alike.

use krait_auth::scram::ScramMechanism;

use super::*;

fn props(text: &str) -> BTreeMap<String, String> {
    krait_properties::parse(text).unwrap()
}

fn config(text: &str) -> CommandConfig {
    from_properties(&props(text)).unwrap()
}

fn error(text: &str) -> String {
    from_properties(&props(text)).unwrap_err().to_string()
}

#[test]
fn java_scram_over_ssl_becomes_librdkafkas_names() {
    let c = config(
        r#"security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
    username="alice" password="s3cr=t";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/krait/ca.pem
ssl.endpoint.identification.algorithm=
bootstrap.servers=ignored:9092
"#,
    );
    let expected: BTreeMap<String, String> = [
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanisms", "SCRAM-SHA-512"),
        ("sasl.username", "alice"),
        ("sasl.password", "s3cr=t"),
        ("ssl.ca.location", "/etc/krait/ca.pem"),
        ("ssl.endpoint.identification.algorithm", "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(c.librdkafka, expected);
    let sasl = c.security.sasl.unwrap();
    assert_eq!(sasl.mechanism, SaslMechanism::Scram(ScramMechanism::Sha512));
    assert_eq!(
        (sasl.username.as_str(), sasl.password.as_str()),
        ("alice", "s3cr=t")
    );
    let tls = c.security.tls.unwrap();
    assert_eq!(tls.truststore, Some(PathBuf::from("/etc/krait/ca.pem")));
    assert!(!tls.verify_hostname);
    assert_eq!(tls.keystore, None);
}

#[test]
fn a_java_keystore_file_is_both_librdkafkas_certificate_and_key() {
    let c = config(
        "security.protocol=SSL\nssl.keystore.type=PEM\nssl.keystore.location=/k/client.pem\nssl.truststore.location=/k/ca.pem\n",
    );
    assert_eq!(c.librdkafka["ssl.certificate.location"], "/k/client.pem");
    assert_eq!(c.librdkafka["ssl.key.location"], "/k/client.pem");
    let tls = c.security.tls.unwrap();
    assert_eq!(tls.keystore, Some(KeyStore::File("/k/client.pem".into())));
    assert!(tls.verify_hostname, "https is the default, as in Kafka");
    assert_eq!(c.security.sasl, None);
}

#[test]
fn librdkafka_names_pass_through_and_give_the_same_security() {
    let c = config(
        "security.protocol=sasl_plaintext\nsasl.mechanisms=PLAIN\nsasl.username=bob\nsasl.password=pw\nlinger.ms=5\n",
    );
    assert_eq!(c.librdkafka["linger.ms"], "5");
    assert_eq!(c.librdkafka["sasl.mechanisms"], "PLAIN");
    assert_eq!(c.security.protocol(), "SASL_PLAINTEXT");
    assert_eq!(c.security.sasl.unwrap().mechanism, SaslMechanism::Plain);
}

#[test]
fn inline_pem_stores_map_to_librdkafkas_pem_keys() {
    let c = config(
        "security.protocol=SSL\nssl.truststore.certificates=CA\nssl.keystore.key=KEY\nssl.keystore.certificate.chain=CHAIN\n",
    );
    assert_eq!(c.librdkafka["ssl.ca.pem"], "CA");
    assert_eq!(c.librdkafka["ssl.key.pem"], "KEY");
    assert_eq!(c.librdkafka["ssl.certificate.pem"], "CHAIN");
    let tls = c.security.tls.unwrap();
    assert_eq!(tls.truststore_pem.as_deref(), Some("CA"));
    assert_eq!(
        tls.keystore,
        Some(KeyStore::Inline {
            key_pem: "KEY".into(),
            chain_pem: "CHAIN".into()
        })
    );
}

#[test]
fn a_certificate_and_key_in_two_files_are_read_for_krait_admin() {
    let dir = std::env::temp_dir().join(format!("krait-cli-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&cert, "CHAIN").unwrap();
    std::fs::write(&key, "KEY").unwrap();
    let c = config(&format!(
        "security.protocol=SSL\nssl.certificate.location={}\nssl.key.location={}\n",
        cert.display(),
        key.display()
    ));
    assert_eq!(
        c.security.tls.unwrap().keystore,
        Some(KeyStore::Inline {
            key_pem: "KEY".into(),
            chain_pem: "CHAIN".into()
        })
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unusable_settings_are_refused_naming_the_key() {
    let cases = [
        (
            "security.protocol=TLS\n",
            "security.protocol: expected PLAINTEXT",
        ),
        (
            "ssl.truststore.type=JKS\n",
            "ssl.truststore.type: JKS stores are not read; use PEM",
        ),
        (
            "ssl.keystore.password=x\n",
            "ssl.keystore.password: PEM stores have no store password",
        ),
        (
            "ssl.endpoint.identification.algorithm=dns\n",
            "ssl.endpoint.identification.algorithm: expected https or empty",
        ),
        (
            "security.protocol=SASL_SSL\nsasl.username=a\nsasl.password=b\n",
            "sasl.mechanism: SASL needs a mechanism",
        ),
        (
            "security.protocol=SASL_SSL\nsasl.mechanism=GSSAPI\nsasl.username=a\nsasl.password=b\n",
            "sasl.mechanism: GSSAPI is not supported",
        ),
        (
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=a\n",
            "sasl.jaas.config: SASL needs a password",
        ),
        (
            "sasl.jaas.config=x.Krb5LoginModule required;\n",
            "sasl.jaas.config: login module x.Krb5LoginModule is not supported",
        ),
        (
            "security.protocol=SSL\nssl.certificate.location=/c.pem\n",
            "ssl.keystore.location: a client certificate needs both",
        ),
    ];
    for (text, expected) in cases {
        let err = error(text);
        assert!(err.starts_with(expected), "{text:?} gave {err:?}");
    }
}

#[test]
fn a_missing_file_is_named() {
    let err = load(Path::new("/nonexistent/client.properties"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read command config /nonexistent/client.properties"),
        "{err}"
    );
}

#[test]
fn a_jaas_password_is_unescaped_twice_as_java_reads_it() {
    let c = config(
        r#"sasl.jaas.config=x.ScramLoginModule required username="u" password="pw \\"quoted\\" \\\\ back";"#,
    );
    assert_eq!(c.librdkafka["sasl.password"], r#"pw "quoted" \ back"#);
}
