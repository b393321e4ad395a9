//! Specifications of certificate subjects as Java writes them and of Kafka's principal mapping
//! rules, with certificates made by rcgen.

use super::*;
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

const DC: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];
const UID: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 1];
const EMAIL: &[u64] = &[1, 2, 840, 113549, 1, 9, 1];

/// A self-signed certificate whose subject has `attributes`, in certificate order.
fn certificate(attributes: Vec<(DnType, DnValue)>) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut name = DistinguishedName::new();
    for (kind, value) in attributes {
        name.push(kind, value);
    }
    params.distinguished_name = name;
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn dn_of(attributes: Vec<(DnType, DnValue)>) -> String {
    subject_dn(&certificate(attributes)).unwrap()
}

fn text(s: &str) -> DnValue {
    DnValue::Utf8String(s.to_string())
}

#[test]
fn the_subject_is_written_in_reverse_certificate_order_without_spaces() {
    let dn = dn_of(vec![
        (
            DnType::CountryName,
            DnValue::PrintableString("US".try_into().unwrap()),
        ),
        (DnType::StateOrProvinceName, text("CA")),
        (DnType::LocalityName, text("Berkeley")),
        (DnType::OrganizationName, text("Acme")),
        (DnType::OrganizationalUnitName, text("eng")),
        (DnType::CommonName, text("admin")),
    ]);
    assert_eq!(dn, "CN=admin,OU=eng,O=Acme,L=Berkeley,ST=CA,C=US");
}

#[test]
fn domain_components_and_user_ids_use_their_short_names() {
    let dn = dn_of(vec![
        (
            DnType::CustomDnType(DC.to_vec()),
            DnValue::Ia5String("com".try_into().unwrap()),
        ),
        (DnType::CustomDnType(UID.to_vec()), text("jdoe")),
        (DnType::CommonName, text("John Doe")),
    ]);
    assert_eq!(dn, "CN=John Doe,UID=jdoe,DC=com");
}

#[test]
fn other_attribute_types_are_written_as_an_oid_and_the_hex_of_their_der_value() {
    let dn = dn_of(vec![
        (DnType::CommonName, text("svc")),
        (
            DnType::CustomDnType(EMAIL.to_vec()),
            DnValue::Ia5String("a@b.c".try_into().unwrap()),
        ),
    ]);
    // 0x16 is IA5String, 0x05 the length, then "a@b.c".
    assert_eq!(dn, "1.2.840.113549.1.9.1=#16056140622e63,CN=svc");
}

#[test]
fn special_characters_in_values_are_escaped_as_java_escapes_them() {
    let dn = dn_of(vec![
        (DnType::OrganizationName, text("Smith, Jones + Co")),
        (DnType::CommonName, text("a=b#c;d<e>f\"g\\h")),
    ]);
    assert_eq!(dn, r#"CN=a\=b\#c\;d\<e\>f\"g\\h,O=Smith\, Jones \+ Co"#);
}

#[test]
fn leading_and_trailing_spaces_and_a_leading_hash_are_escaped() {
    let dn = dn_of(vec![
        (DnType::OrganizationName, text("  padded ")),
        (DnType::CommonName, text("#tag")),
    ]);
    assert_eq!(dn, r"CN=\#tag,O=\ \ padded\ ");
}

#[test]
fn non_ascii_values_are_written_as_characters() {
    let bmp = DnValue::BmpString("Zürich".try_into().unwrap());
    let dn = dn_of(vec![
        (DnType::LocalityName, bmp),
        (DnType::CommonName, text("Jörg")),
    ]);
    assert_eq!(dn, "CN=Jörg,L=Zürich");
}

#[test]
fn bytes_that_are_not_a_certificate_are_refused() {
    assert!(matches!(
        subject_dn(b"not a certificate"),
        Err(PrincipalError::BadCertificate(_))
    ));
    assert!(matches!(
        subject_dn(&[]),
        Err(PrincipalError::BadCertificate(_))
    ));
}

#[test]
fn a_certificate_subject_maps_through_the_rules() {
    let dn = dn_of(vec![
        (DnType::OrganizationalUnitName, text("ServiceUsers")),
        (DnType::CommonName, text("Kafka-Client")),
    ]);
    let mapper = PrincipalMapper::parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT").unwrap();
    assert_eq!(mapper.map(&dn).unwrap(), "kafka-client");
}

const KAFKA_DOCS_RULES: &str = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
    RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
    RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT";

#[test]
fn the_rules_from_kafkas_documentation_map_as_documented() {
    let mapper = PrincipalMapper::parse(KAFKA_DOCS_RULES).unwrap();
    let cases = [
        (
            "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
            "serviceuser",
        ),
        (
            "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown",
            "adminuser@admin",
        ),
        ("cn=Duke,OU=JavaSoft,O=Sun Microsystems", "duke"),
        (
            "OU=JavaSoft,O=Sun Microsystems,C=US",
            "OU=JavaSoft,O=Sun Microsystems,C=US",
        ),
    ];
    for (dn, principal) in cases {
        assert_eq!(mapper.map(dn).unwrap(), principal, "{dn}");
    }
}

#[test]
fn the_rules_from_kafkas_mapper_tests_map_as_kafka_maps_them() {
    let rules = [
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
        "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
        "DEFAULT",
    ]
    .join(", ");
    let mapper = PrincipalMapper::parse(&rules).unwrap();
    assert_eq!(
        mapper.map("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(),
        "duke"
    );
    assert_eq!(
        mapper
            .map("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US")
            .unwrap(),
        "duke@sme"
    );
    assert_eq!(
        mapper.map("cn=duke,ou=sme,dc=mycp,dc=com").unwrap(),
        "DUKE@SME"
    );
    assert_eq!(
        mapper
            .map("cN=duke,OU=JavaSoft,O=Sun Microsystems")
            .unwrap(),
        "DUKE"
    );
    let other = "OU=JavaSoft,O=Sun Microsystems,C=US";
    assert_eq!(mapper.map(other).unwrap(), other);
}

#[test]
fn a_rule_pattern_may_contain_commas_and_escaped_slashes() {
    let mapper = PrincipalMapper::parse(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT").unwrap();
    assert_eq!(
        mapper
            .map(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz")
            .unwrap(),
        r"Tkac\, Adam"
    );
    let mapper = PrincipalMapper::parse(r"RULE:^CN=(.*)\/(.*)$/$2\/$1/").unwrap();
    assert_eq!(mapper.map("CN=a/b").unwrap(), "b/a");
}

#[test]
fn whitespace_around_rules_and_commas_is_ignored() {
    let mapper = PrincipalMapper::parse("  RULE:^CN=(.*?),.*$/$1/U ,\n DEFAULT  ").unwrap();
    assert_eq!(mapper.map("CN=x,O=y").unwrap(), "X");
    assert_eq!(mapper.map("O=y").unwrap(), "O=y");
}

#[test]
fn an_empty_or_default_rule_list_yields_the_dn_itself() {
    for rules in ["", "  ", "DEFAULT"] {
        let mapper = PrincipalMapper::parse(rules).unwrap();
        assert_eq!(mapper.map("CN=a,O=b").unwrap(), "CN=a,O=b");
    }
    assert_eq!(
        PrincipalMapper::default_rules().map("CN=a").unwrap(),
        "CN=a"
    );
}

#[test]
fn a_dn_no_rule_matches_is_refused() {
    let mapper = PrincipalMapper::parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/").unwrap();
    assert_eq!(
        mapper.map("CN=x,OU=Humans"),
        Err(PrincipalError::NoRuleMatched("CN=x,OU=Humans".to_string()))
    );
}

#[test]
fn a_pattern_must_match_the_whole_dn() {
    let mapper = PrincipalMapper::parse("RULE:CN=([a-z]+)/$1/").unwrap();
    assert_eq!(mapper.map("CN=abc").unwrap(), "abc");
    assert!(mapper.map("CN=abc,O=x").is_err());
}

#[test]
fn the_rules_kafka_refuses_are_refused() {
    let invalid = [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/U",
        "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
        "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        "RULE:^CN=(.*?)$/$1/X",
    ];
    assert_each_is_a_bad_rule(&invalid);
}

#[test]
fn a_pattern_that_is_not_a_regex_or_a_replacement_java_rejects_is_refused() {
    assert_each_is_a_bad_rule(&[
        "RULE:^CN=(.*$/$1/",
        "RULE:^CN=(.*)$/$x/",
        r"RULE:^CN=(.*)$/$1\/",
    ]);
}

fn assert_each_is_a_bad_rule(cases: &[&str]) {
    for rules in cases {
        assert!(
            matches!(
                PrincipalMapper::parse(rules),
                Err(PrincipalError::BadRule(_))
            ),
            "{rules} accepted"
        );
    }
}

#[test]
fn group_references_follow_java_and_kafka() {
    let mapper = PrincipalMapper::parse(r"RULE:^CN=(a)(b)$/$1$2$12$3$0\$1/").unwrap();
    // $12 is group 1 then "2" (only two groups); $3 names no group and stays literal; $0 is the
    // whole DN; \$ is a literal dollar.
    assert_eq!(mapper.map("CN=ab").unwrap(), "aba2$3CN=ab$1");
}

#[test]
fn named_groups_can_be_referenced() {
    let mapper =
        PrincipalMapper::parse(r"RULE:^CN=(?P<user>\w+),O=(?P<org>\w+)$/${user}@${org}/").unwrap();
    assert_eq!(mapper.map("CN=bob,O=acme").unwrap(), "bob@acme");
}

#[test]
fn rules_are_tried_in_order() {
    let mapper = PrincipalMapper::parse("RULE:^CN=(.*)$/first/,RULE:^CN=(.*)$/second/").unwrap();
    assert_eq!(mapper.map("CN=x").unwrap(), "first");
}
