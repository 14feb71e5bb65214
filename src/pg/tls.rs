//! TLS for `sslmode` with rustls, following libpq's meaning of each mode:
//! `prefer`/`require` encrypt without checking the certificate (unless a
//! root certificate file exists, when `require` acts as `verify-ca`);
//! `verify-ca` checks the chain against `sslrootcert`; `verify-full` also
//! checks the host name. Client certificates come from `sslcert`/`sslkey`.

use crate::config::{ConnSettings, SslMode};
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS flavour a cancel request must use (it opens a new connection).
#[derive(Clone)]
pub enum CancelTls {
    None,
    Rustls(MakeRustlsConnect),
}

pub(super) type Connector = MakeRustlsConnect;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str) -> impl FnOnce(rustls::Error) -> Error + '_ {
    move |e| Error::Config(format!("TLS setup ({what}): {e}"))
}

fn default_root_cert() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
}

/// Builds the connector for `settings.sslmode` (not called for `disable`).
pub(super) fn make_connector(settings: &ConnSettings) -> Result<Connector> {
    Ok(MakeRustlsConnect::new(client_config(settings)?))
}

/// The rustls configuration for `settings.sslmode`: what the driver's
/// connector and pgkeep's own COPY connections ([`super::wire`]) both use.
pub(super) fn client_config(settings: &ConnSettings) -> Result<ClientConfig> {
    let provider = provider();
    let root_path = settings
        .sslrootcert
        .as_ref()
        .map(PathBuf::from)
        .or_else(default_root_cert)
        .filter(|p| p.exists());
    let verify_chain = match settings.sslmode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => root_path.is_some(),
        _ => false,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err("protocol versions"))?;
    let verifier: Arc<dyn ServerCertVerifier> = if verify_chain {
        let path = root_path.ok_or_else(|| {
            Error::Config(format!(
                "sslmode={} needs a root certificate: set sslrootcert or create ~/.postgresql/root.crt",
                settings.sslmode.as_str()
            ))
        })?;
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| Error::Config(format!("reading sslrootcert {}: {e}", path.display())))?;
        for c in certs {
            let c = c.map_err(|e| {
                Error::Config(format!("reading sslrootcert {}: {e}", path.display()))
            })?;
            roots
                .add(c)
                .map_err(|e| Error::Config(format!("sslrootcert {}: {e}", path.display())))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| Error::Config(format!("TLS verifier: {e}")))?;
        Arc::new(PgVerifier {
            inner: Some(webpki),
            check_name: settings.sslmode == SslMode::VerifyFull,
            provider: provider.clone(),
        })
    } else {
        Arc::new(PgVerifier {
            inner: None,
            check_name: false,
            provider: provider.clone(),
        })
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&settings.sslcert, &settings.sslkey) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<std::result::Result<_, _>>())
                .map_err(|e| Error::Config(format!("reading sslcert {cert}: {e}")))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::Config(format!("reading sslkey {key}: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(tls_err("client certificate"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// Verifies per sslmode: no chain check, chain only (verify-ca), or chain
/// and name (verify-full). Handshake signatures are always checked.
#[derive(Debug)]
struct PgVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PgVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(v) => Ok(v),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
