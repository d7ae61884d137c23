use std::os::unix::fs::PermissionsExt;

use super::*;

fn now() -> SystemTime {
    SystemTime::now()
}

fn name(s: &str) -> NodeName {
    s.parse().unwrap()
}

#[test]
fn keys_are_private_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let ca = SiteCa::init(dir.path(), "site CA", Validity::days_from(now(), 10)).unwrap();
    let issued = ca
        .issue(&name("sensor1.example"), &[], Validity::days_from(now(), 1))
        .unwrap();
    for key in [dir.path().join(CA_KEY), issued.key_file.clone()] {
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }
    let before = std::fs::read(&issued.key_file).unwrap();
    let again = ca.issue(&name("sensor1.example"), &[], Validity::days_from(now(), 1));
    assert!(matches!(again, Err(PkiError::Exists { .. })), "{again:?}");
    assert_eq!(std::fs::read(&issued.key_file).unwrap(), before);
    let again = SiteCa::init(dir.path(), "other", Validity::days_from(now(), 10));
    assert!(matches!(again, Err(PkiError::Exists { .. })));
}

#[test]
fn leaves_of_a_reloaded_ca_name_it_as_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let first = SiteCa::init(dir.path(), "site CA", Validity::days_from(now(), 10)).unwrap();
    drop(first);
    let ca = SiteCa::load(dir.path(), now()).unwrap();
    let issued = ca
        .issue(
            &name("agg"),
            &[name("127.0.0.1"), name("localhost")],
            Validity::days_from(now(), 1),
        )
        .unwrap();
    let ca_pem = std::fs::read(ca.cert_file()).unwrap();
    let leaf_pem = std::fs::read(&issued.cert_file).unwrap();
    let (_, ca_pem) = x509_parser::pem::parse_x509_pem(&ca_pem).unwrap();
    let (_, leaf_pem) = x509_parser::pem::parse_x509_pem(&leaf_pem).unwrap();
    let (ca_cert, leaf) = (ca_pem.parse_x509().unwrap(), leaf_pem.parse_x509().unwrap());
    assert_eq!(leaf.issuer().as_raw(), ca_cert.subject().as_raw());
    let cn: Vec<_> = leaf
        .subject()
        .iter_common_name()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["agg"]);
    let sans = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(sans.value.general_names.len(), 3);
}

#[test]
fn an_expired_ca_issues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let long_ago = now() - Duration::from_secs(30 * 86_400);
    SiteCa::init(dir.path(), "old CA", Validity::days_from(long_ago, 2)).unwrap();
    let err = SiteCa::load(dir.path(), now()).err().unwrap();
    assert!(matches!(err, PkiError::CaNotValid { .. }), "{err}");
    assert!(err.to_string().contains("not valid now"), "{err}");
}

#[test]
fn node_names_cannot_leave_the_directory() {
    for bad in ["../x", "a/b", "", ".", "..", "-a", "a..b", "a b", "é"] {
        assert!(bad.parse::<NodeName>().is_err(), "{bad:?}");
    }
    for good in ["sensor1", "sensor-1.example.org", "10.0.0.1", "::1"] {
        assert!(good.parse::<NodeName>().is_ok(), "{good:?}");
    }
}

#[test]
fn revoking_lists_the_serial_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = SiteCa::init(dir.path(), "site CA", Validity::days_from(now(), 10)).unwrap();
    let crl_entries = || {
        let pem = std::fs::read(dir.path().join(CRL)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).unwrap();
        crl.iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect::<Vec<_>>()
    };
    assert!(crl_entries().is_empty(), "init writes an empty list");
    let issued = ca
        .issue(&name("sensor3"), &[], Validity::days_from(now(), 1))
        .unwrap();
    ca.issue(&name("sensor4"), &[], Validity::days_from(now(), 1))
        .unwrap();
    ca.revoke(&name("sensor3"), now()).unwrap();
    ca.revoke(&name("sensor3"), now()).unwrap();
    let pem = std::fs::read(&issued.cert_file).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let serial = pem.parse_x509().unwrap().raw_serial().to_vec();
    assert_eq!(crl_entries(), vec![serial]);
    assert!(matches!(
        ca.revoke(&name("nobody"), now()),
        Err(PkiError::Io { .. })
    ));
}
