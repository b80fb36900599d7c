//! TLS and the SCRAM and OAUTHBEARER mechanisms are behind cargo features. With a
//! feature off, a config that asks for it fails `ClientConfig::validate` (which every
//! client constructor calls) and `SaslConfig::validate` with an error naming the
//! feature; with it on, the same config is accepted.
//!
//! `cargo test -p kafka-net --test features` checks the default (all on);
//! scripts/test.sh also runs it with `--no-default-features`.

use kafka_net::sasl::{OAuthToken, SaslError, TokenProvider};
use kafka_net::{ClientConfig, ErrorKind, SaslConfig, TlsConfig};
use std::sync::Arc;

struct Fixed;

#[async_trait::async_trait]
impl TokenProvider for Fixed {
    async fn token(&self) -> Result<OAuthToken, SaslError> {
        Ok(OAuthToken::new("token"))
    }
}

fn client_config(tls: Option<TlsConfig>, sasl: Option<SaslConfig>) -> ClientConfig {
    let mut config = ClientConfig::default();
    config.tls = tls;
    config.sasl = sasl;
    config
}

fn accepted_only_with(config: &ClientConfig, enabled: bool, feature: &str) {
    match (config.validate(), enabled) {
        (Ok(()), true) => {}
        (Err(e), false) => {
            assert!(matches!(e.kind(), ErrorKind::Config(_)), "{e}");
            assert!(
                e.to_string().contains(&format!("`{feature}` feature")),
                "{e}"
            );
        }
        (result, _) => panic!("{feature} (enabled: {enabled}): {result:?}"),
    }
}

#[test]
fn tls_needs_its_feature() {
    let config = client_config(Some(TlsConfig::default()), None);
    accepted_only_with(&config, cfg!(feature = "tls"), "tls");
}

#[test]
fn scram_needs_its_feature() {
    for sasl in [
        SaslConfig::scram_sha256("alice", "secret"),
        SaslConfig::scram_sha512("alice", "secret"),
    ] {
        let mechanism = sasl.mechanism();
        let direct = sasl.validate();
        assert_eq!(direct.is_ok(), cfg!(feature = "sasl-scram"), "{direct:?}");
        if let Err(e) = direct {
            assert_eq!(e.mechanism(), mechanism);
            assert!(e.to_string().contains("`sasl-scram` feature"), "{e}");
        }
        let config = client_config(None, Some(sasl));
        accepted_only_with(&config, cfg!(feature = "sasl-scram"), "sasl-scram");
    }
}

#[test]
fn oauthbearer_needs_its_feature() {
    let sasl = SaslConfig::oauthbearer(Arc::new(Fixed));
    assert_eq!(sasl.mechanism(), "OAUTHBEARER");
    assert_eq!(sasl.validate().is_ok(), cfg!(feature = "sasl-oauthbearer"));
    let config = client_config(None, Some(sasl));
    accepted_only_with(
        &config,
        cfg!(feature = "sasl-oauthbearer"),
        "sasl-oauthbearer",
    );
}

#[test]
fn plain_needs_no_feature() {
    let config = client_config(None, Some(SaslConfig::plain("alice", "secret")));
    config.validate().expect("PLAIN is always there");
}
