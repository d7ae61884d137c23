//! The `nats` transport with credentials: a real `nats-server` in operator mode (decentralised
//! JWT authentication), an account with JetStream, and a user whose `.creds` file (user JWT and
//! NKey seed) the shipper's `credentials` and the aggregator's `NatsCredentials` name. Both
//! deliver every line; a shipper without the file, or with a user the account never signed, is
//! refused with the reason named and delivers nothing.

mod common;
mod shipper_support;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{start_nats_server, wait_for, Aggregator};
use nkeys::KeyPair;
use serde_json::json;
use shipper_support::{append, received_seqs, Shipper};

/// A JWT as the NATS tools write it: an `ed25519-nkey` signature by `issuer` over the header and
/// the claims, each base64url without padding.
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = json!({ "typ": "JWT", "alg": "ed25519-nkey" });
    let claims = json!({
        "jti": format!("{name}-{subject}"),
        "iat": 1_765_000_000,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer.sign(signed.as_bytes()).expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A user of `account`, as a `.creds` file.
fn creds(account: &KeyPair, path: &Path) {
    let user = KeyPair::new_user();
    let token = jwt(
        account,
        &user.public_key(),
        "estuary",
        json!({ "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2 }),
    );
    let seed = user.seed().expect("user seed");
    std::fs::write(
        path,
        format!(
            "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        ),
    )
    .expect("write creds");
}

fn nats_destination(port: u16, credentials: Option<&Path>) -> String {
    let creds = credentials.map_or(String::new(), |c| {
        format!("credentials = \"{}\"\n", c.display())
    });
    format!(
        "[[destination]]\ntransport = \"nats\"\nservers = [\"nats://127.0.0.1:{port}\"]\n{creds}retry_interval = \"200ms\"\nretry_max = \"1s\"\n"
    )
}

fn wait_for_output(shipper: &Shipper, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shipper.output().contains(text) {
        assert!(
            Instant::now() < deadline,
            "{text:?} not named:\n{}",
            shipper.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lines_cross_an_operator_mode_server_with_creds_and_others_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let stranger = KeyPair::new_account();
    // JetStream in operator mode needs a system account for the servers' own traffic.
    let system = KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "site",
        json!({ "type": "operator", "version": 2 }),
    );
    let limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "logs",
        json!({ "limits": limits, "type": "account", "version": 2 }),
    );
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        json!({ "type": "account", "version": 2 }),
    );
    let (good, foreign) = (
        tmp.path().join("good.creds"),
        tmp.path().join("foreign.creds"),
    );
    creds(&account, &good);
    creds(&stranger, &foreign);

    let operator_file = tmp.path().join("operator.jwt");
    std::fs::write(&operator_file, &operator_jwt).unwrap();
    let (_server, port) = start_nats_server(
        tmp.path(),
        &format!(
            "operator: \"{}\"\nsystem_account: {}\nresolver: MEMORY\n\
             resolver_preload: {{ {}: \"{account_jwt}\", {}: \"{system_jwt}\" }}\n",
            operator_file.display(),
            system.public_key(),
            account.public_key(),
            system.public_key(),
        ),
    );

    let agg_dir = tmp.path().join("agg");
    std::fs::create_dir_all(&agg_dir).unwrap();
    let agg = Aggregator::start(
        &agg_dir,
        &format!(
            "NatsServers = nats://127.0.0.1:{port}\nNatsCredentials = {}\nNatsTags = bro_conn\nNatsName = agg1\nNatsReplicas = 1\n",
            good.display()
        ),
    );

    let mut trusted = Shipper::toml(
        &[("conn.log", "bro_conn:")],
        "",
        &[nats_destination(port, Some(&good))],
    );
    append(&trusted.log("conn.log"), 0..500);
    trusted.start();
    wait_for(
        Duration::from_secs(60),
        "every line at the aggregator",
        || (received_seqs(&agg.current("conn.log")) == (0..500).collect::<Vec<_>>()).then_some(()),
    );

    for (name, credentials) in [("no creds", None), ("a foreign account", Some(&foreign))] {
        let mut refused = Shipper::toml(
            &[("conn.log", "bro_conn:")],
            "",
            &[nats_destination(port, credentials.map(|c| c.as_path()))],
        );
        append(&refused.log("conn.log"), 1000..1010);
        refused.start();
        wait_for_output(&refused, "uthorization");
        refused.stop();
        assert_eq!(
            received_seqs(&agg.current("conn.log")),
            (0..500).collect::<Vec<_>>(),
            "{name}: {}",
            agg.daemon.output()
        );
    }
    trusted.stop();
}
