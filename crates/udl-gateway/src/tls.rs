//! TLS for the gateway's listener and, with a client CA, mutual TLS: a client without a
//! certificate that CA signed is refused during the handshake, before any HTTP is read.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use udl::config::GatewayTls;
use udl::{Error, ErrorKind, Result};

/// The DNS names of the client certificate a connection presented (already verified against
/// the client CA); a request extension the access check reads.
#[derive(Clone, Debug)]
pub struct ClientCertificateNames(pub Vec<String>);

fn config_error(what: &str, path: &std::path::Path) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("gateway.tls: cannot read {what} from {}", path.display()),
    )
}

/// The acceptor `tls` describes.
pub fn acceptor(tls: &GatewayTls) -> Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|_| config_error("a certificate chain", &tls.cert_file))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|_| config_error("a private key", &tls.key_file))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::new(ErrorKind::Config, "gateway.tls: no TLS version available"))?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|_| config_error("a CA", ca))? {
                let cert = cert.map_err(|_| config_error("a CA", ca))?;
                roots
                    .add(cert)
                    .map_err(|_| config_error("a valid CA", ca))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|_| config_error("a usable client CA", ca))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|_| {
        Error::new(
            ErrorKind::Config,
            "gateway.tls: the key does not match the certificate",
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The names a verified client certificate carries (its DNS subject alternative names).
pub fn client_names(certificate: &CertificateDer<'_>) -> ClientCertificateNames {
    let names = webpki::EndEntityCert::try_from(certificate)
        .map(|cert| cert.valid_dns_names().map(str::to_owned).collect())
        .unwrap_or_default();
    ClientCertificateNames(names)
}
