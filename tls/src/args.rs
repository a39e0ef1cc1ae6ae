//! The TLS options every TLS-capable probe flattens into its own, so `--ca-file` or
//! `--insecure` mean the same thing in every binary.

use std::path::PathBuf;

use crate::{TlsFiles, Verification};

/// `--ca-file`, `--client-cert`, `--client-key`, `--tls-server-name`, `--insecure`.
///
/// Whether TLS is used at all is the probe's business (`https://`, `rediss://`, `--tls`,
/// libpq's `sslmode`); these say whom to trust and how much to verify once it is.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM file of CA certificates to trust instead of the system's.
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_key",
        help_heading = "TLS"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert (unencrypted).
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_cert",
        help_heading = "TLS"
    )]
    pub client_key: Option<PathBuf>,
    /// Verify the server's certificate against this name instead of the host connected to.
    #[arg(long, value_name = "NAME", help_heading = "TLS")]
    pub tls_server_name: Option<String>,
    /// Do not verify the server's certificate (logged as a warning at start).
    #[arg(long, help_heading = "TLS")]
    pub insecure: bool,
}

impl TlsArgs {
    /// The first of these options that was given, by name (a probe that speaks TLS only with
    /// `--tls` refuses it without, naming it).
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.ca_file.is_some(), "--ca-file"),
            (self.client_cert.is_some(), "--client-cert"),
            (self.tls_server_name.is_some(), "--tls-server-name"),
            (self.insecure, "--insecure"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    /// Full verification, or none with `--insecure`.
    pub fn verification(&self) -> Verification {
        if self.insecure {
            Verification::None
        } else {
            Verification::Full
        }
    }

    /// The files to load; `system_roots` says whether the system's CAs apply without
    /// `--ca-file` (libpq never uses them).
    pub fn files(&self, system_roots: bool) -> TlsFiles<'_> {
        TlsFiles {
            ca_file: self.ca_file.as_deref(),
            system_roots,
            client_cert: self.client_cert.as_deref(),
            client_key: self.client_key.as_deref(),
            server_name: self.tls_server_name.as_deref(),
        }
    }

    /// Log the one warning `--insecure` deserves, naming what is checked (`target` must hold no
    /// secret).
    pub fn warn_if_insecure(&self, target: &str) {
        if self.insecure {
            tracing::warn!(target = %target, "--insecure: the server's certificate is NOT verified");
        }
    }
}
