//! rustls client configuration shared by exaprobe's probes (HTTP, TCP, PostgreSQL, ...).
//!
//! One place decides which CAs are trusted (system roots or a `--ca-file`), whether a client
//! certificate is presented, and how much of the server's certificate is verified: everything,
//! the chain only, or nothing (`--insecure`). The `ring` provider is passed explicitly, so no
//! process-wide default is needed and no C toolchain is (aws-lc-rs would need one).

mod args;
mod explain;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

pub use args::TlsArgs;
pub use explain::{CertificateProblem, describe, describe_chain, utc_date};
pub use rustls;

/// How much of the server's certificate is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Encrypt only: any certificate is accepted (`--insecure`, libpq `require`).
    None,
    /// The chain must lead to a trusted CA, whatever name it carries (libpq `verify-ca`).
    Chain,
    /// Chain and host name: the normal, safe choice.
    Full,
}

/// Where trust and identity come from. Paths are named in errors by their option.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles<'a> {
    /// PEM bundle of trusted CAs (`--ca-file`); replaces the system roots.
    pub ca_file: Option<&'a Path>,
    /// Use the system's trusted roots when there is no `ca_file`.
    pub system_roots: bool,
    /// PEM client certificate chain (`--client-cert`).
    pub client_cert: Option<&'a Path>,
    /// PEM client private key (`--client-key`).
    pub client_key: Option<&'a Path>,
    /// Verify the certificate against this name instead of the one connected to
    /// (`--tls-server-name`).
    pub server_name: Option<&'a str>,
}

/// The crypto provider every exaprobe TLS connection uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Build a rustls client configuration; errors name the offending option.
pub fn client_config(verification: Verification, files: &TlsFiles<'_>) -> Result<ClientConfig> {
    let provider = provider();
    let mut verifier: Arc<dyn ServerCertVerifier> = match verification {
        Verification::None => Arc::new(AcceptAnyCertificate(provider.clone())),
        Verification::Chain | Verification::Full => {
            let roots = trusted_roots(files)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .context("building the certificate verifier")?;
            if verification == Verification::Chain {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    verifier = Arc::new(Explained(verifier));
    if let Some(name) = files.server_name {
        let name = ServerName::try_from(name.to_string()).with_context(|| {
            format!("--tls-server-name {name:?} is not a valid DNS name or IP address")
        })?;
        verifier = Arc::new(VerifyAs {
            inner: verifier,
            name,
        });
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (files.client_cert, files.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("--client-cert {}: cannot read", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--client-cert {}: invalid PEM", cert.display()))?;
            if chain.is_empty() {
                anyhow::bail!("--client-cert {}: no certificate found", cert.display());
            }
            let key_der = PrivateKeyDer::from_pem_file(key).with_context(|| {
                format!("--client-key {}: no usable private key", key.display())
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .with_context(|| {
                    format!(
                        "--client-key {} does not match --client-cert",
                        key.display()
                    )
                })?
        }
        (Some(_), None) => anyhow::bail!("--client-cert needs --client-key"),
        (None, Some(_)) => anyhow::bail!("--client-key needs --client-cert"),
    };
    Ok(config)
}

/// The CAs to trust: `ca_file`, else the system's roots when allowed.
fn trusted_roots(files: &TlsFiles<'_>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match files.ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("--ca-file {}: cannot read", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--ca-file {}: invalid PEM", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                anyhow::bail!("--ca-file {}: no usable CA certificate", path.display());
            }
        }
        None if files.system_roots => {
            let loaded = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                anyhow::bail!(
                    "no system CA certificates found (install ca-certificates, or give --ca-file)"
                );
            }
        }
        None => anyhow::bail!("certificate verification needs --ca-file"),
    }
    Ok(roots)
}

/// Verifies against a fixed name (`--tls-server-name`) instead of the name connected to.
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Turns a refusal into a readable [`CertificateProblem`] (see [`explain`]), looking at the
/// certificate that was refused.
#[derive(Debug)]
struct Explained(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for Explained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|error| explain::explain(error, end_entity, server_name))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// No authentication of the server (`--insecure`, libpq's `sslmode=require`): encryption
/// against passive eavesdropping only. Signatures are still checked so the handshake is sound,
/// and the validity period too: an expired certificate is always a failure.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        explain::check_validity(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The full WebPKI check, except that a name mismatch is accepted (libpq's `verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
