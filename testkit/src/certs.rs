//! Certificates for TLS tests, made with rcgen: a private CA and server certificates that are
//! valid, expired, not yet valid or for another name; a self-signed certificate; the CA itself
//! served as if it were a server certificate. PEM files are written for servers that read
//! files (redis-server, PostgreSQL); rustls configurations are built for servers in Rust.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate with its key, in memory and as PEM files.
pub struct Identity {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    /// Its private key (PKCS#8 DER).
    pub key_der: Vec<u8>,
    /// The certificate as a PEM file.
    pub cert_file: PathBuf,
    /// The key as a PEM file.
    pub key_file: PathBuf,
}

impl Identity {
    /// A rustls server configuration presenting this certificate, offering `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![self.cert.clone()], key)
        .expect("a usable test certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// A private CA; its certificate is in `ca_file` (for `--ca-file`).
pub struct Pki {
    /// Where the PEM files live (removed on drop).
    pub dir: tempfile::TempDir,
    /// The CA certificate, PEM.
    pub ca_file: PathBuf,
    issuer: rcgen::Issuer<'static, KeyPair>,
    ca: Identity,
    count: std::cell::Cell<u32>,
}

fn days(n: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(n)
}

fn write(dir: &std::path::Path, stem: &str, cert: &rcgen::Certificate, key: &KeyPair) -> Identity {
    let cert_file = dir.join(format!("{stem}.crt"));
    let key_file = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_file, cert.pem()).expect("write a test certificate");
    std::fs::write(&key_file, key.serialize_pem()).expect("write a test key");
    Identity {
        cert: cert.der().clone(),
        key_der: key.serialize_der(),
        cert_file,
        key_file,
    }
}

impl Pki {
    /// A new CA named `common_name`.
    pub fn new(common_name: &str) -> Pki {
        let dir = crate::temp_dir();
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.not_before = days(-1);
        params.not_after = days(3650);
        let cert = params.self_signed(&key).expect("a CA certificate");
        let ca = write(dir.path(), "ca", &cert, &key);
        Pki {
            ca_file: ca.cert_file.clone(),
            ca,
            issuer: rcgen::Issuer::new(params, key),
            dir,
            count: std::cell::Cell::new(0),
        }
    }

    /// A server certificate for `names`, valid from `valid_days.0` to `valid_days.1` days
    /// from now (`(-30, -1)`: expired yesterday; `(1, 30)`: valid from tomorrow).
    pub fn server(&self, names: &[&str], valid_days: (i64, i64)) -> Identity {
        let key = KeyPair::generate().expect("a key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("certificate parameters");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.not_before = days(valid_days.0);
        params.not_after = days(valid_days.1);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        self.count.set(self.count.get() + 1);
        write(
            self.dir.path(),
            &format!("server{}", self.count.get()),
            &cert,
            &key,
        )
    }

    /// The CA's own certificate and key, to serve as if it were a server's.
    pub fn ca_as_end_entity(&self) -> &Identity {
        &self.ca
    }
}

/// A self-signed certificate for `names` (trusted by nobody), written under `dir`.
pub fn self_signed(dir: &std::path::Path, names: &[&str]) -> Identity {
    let key = KeyPair::generate().expect("a key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("self"));
    params.not_before = days(-1);
    params.not_after = days(365);
    let cert = params.self_signed(&key).expect("self-sign");
    write(dir, "self-signed", &cert, &key)
}
