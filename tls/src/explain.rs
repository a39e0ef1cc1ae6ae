//! TLS failures as one short sentence an operator can act on, shared by every probe.
//!
//! rustls reports a refused certificate as an enum (`UnknownIssuer`, an OID dump for an
//! unsupported signature, `Other(OtherError(CaUsedAsEndEntity))`), and the probes' client
//! libraries bury it under layers of io and hyper errors. The verifier installed by
//! [`crate::client_config`] looks at the certificate itself when it refuses it (is it
//! self-signed? for which names? until when?) and carries the sentence inside the rustls error
//! as a [`CertificateProblem`]; [`describe`] and [`describe_chain`] find and print it.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, OtherError};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// Why the server's certificate was refused, in words. Travels inside
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))` so that the sentence
/// survives the trip through hyper, reqwest, tokio-postgres or redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateProblem(pub String);

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for CertificateProblem {}

/// One short sentence for a TLS error (without a "TLS handshake failed" prefix).
pub fn describe(error: &rustls::Error) -> String {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(problem) => certificate_sentence(problem, None, None),
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".into(),
        rustls::Error::AlertReceived(Alert::CertificateRequired) => {
            "the server requires a client certificate (give --client-cert and --client-key)".into()
        }
        rustls::Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::AccessDenied),
        ) => {
            format!("the server refused the handshake or our client certificate (alert {alert:?})")
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the server refused the handshake (alert {alert:?})")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server does not speak TLS on this port (unexpected handshake bytes)".into()
        }
        rustls::Error::PeerIncompatible(why) => {
            format!("no TLS version or cipher suite in common with the server ({why:?})")
        }
        rustls::Error::General(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The sentence for the first TLS error found in `error`'s chain, looking inside io errors'
/// payloads too (their `source()` skips it); `None` when the failure was not TLS.
pub fn describe_chain(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        if let Some(problem) = cause.downcast_ref::<CertificateProblem>() {
            return Some(problem.0.clone());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = describe_chain(inner)
        {
            return Some(found);
        }
        next = cause.source();
    }
    None
}

/// `error` from a certificate verifier, rewritten to carry the sentence (see the module doc).
/// Errors that are not about the certificate pass through unchanged.
pub(crate) fn explain(
    error: rustls::Error,
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
) -> rustls::Error {
    let rustls::Error::InvalidCertificate(problem) = &error else {
        return error;
    };
    let parsed = x509_parser::parse_x509_certificate(end_entity.as_ref()).ok();
    let sentence =
        certificate_sentence(problem, parsed.as_ref().map(|(_, c)| c), Some(server_name));
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
        CertificateProblem(sentence),
    ))))
}

/// Refuse a certificate outside its validity period, even when nothing else is verified
/// (`--insecure`): an expired certificate is a fault to fix, not a detail to skip.
pub(crate) fn check_validity(
    end_entity: &CertificateDer<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(end_entity.as_ref()) else {
        return Ok(());
    };
    let validity = certificate.validity();
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let to_unix =
        |t: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.max(0) as u64));
    if now_secs > validity.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: to_unix(validity.not_after.timestamp()),
            },
        ));
    }
    if now_secs < validity.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: to_unix(validity.not_before.timestamp()),
            },
        ));
    }
    Ok(())
}

/// A UNIX time as `2026-11-24 18:00:00 UTC`.
pub fn utc_date(seconds: i64) -> String {
    match x509_parser::time::ASN1Time::from_timestamp(seconds) {
        Ok(time) => {
            let t = time.to_datetime();
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => format!("{seconds} s after 1970"),
    }
}

fn unix_date(time: &UnixTime) -> String {
    utc_date(i64::try_from(time.as_secs()).unwrap_or(i64::MAX))
}

fn certificate_sentence(
    problem: &CertificateError,
    certificate: Option<&X509Certificate<'_>>,
    server_name: Option<&ServerName<'_>>,
) -> String {
    let self_signed = certificate.is_some_and(|c| c.subject() == c.issuer());
    let subject = certificate
        .map(|c| c.subject().to_string())
        .unwrap_or_default();
    let issuer = certificate
        .map(|c| c.issuer().to_string())
        .unwrap_or_default();
    let not_after = certificate.map(|c| utc_date(c.validity().not_after.timestamp()));
    let not_before = certificate.map(|c| utc_date(c.validity().not_before.timestamp()));
    match problem {
        CertificateError::Other(OtherError(inner)) => {
            if let Some(problem) = inner.downcast_ref::<CertificateProblem>() {
                return problem.0.clone();
            }
            let text = format!("{inner:?}");
            if text.contains("CaUsedAsEndEntity") {
                return if certificate.is_some() {
                    format!(
                        "the server presented a CA certificate ({subject}), not a server certificate"
                    )
                } else {
                    "the server presented a CA certificate, not a server certificate".into()
                };
            }
            format!("certificate refused: {inner}")
        }
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate has expired on {}", unix_date(not_after))
        }
        CertificateError::Expired => match not_after {
            Some(date) => format!("certificate has expired on {date}"),
            None => "certificate has expired".into(),
        },
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate is not valid before {}", unix_date(not_before))
        }
        CertificateError::NotValidYet => match not_before {
            Some(date) => format!("certificate is not valid before {date}"),
            None => "certificate is not valid yet".into(),
        },
        CertificateError::UnknownIssuer
        | CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
            if self_signed =>
        {
            format!("certificate is self-signed and not trusted ({subject})")
        }
        CertificateError::UnknownIssuer => {
            if certificate.is_some() {
                format!("certificate is not trusted: its issuer ({issuer}) is not a trusted CA")
            } else {
                "certificate is not trusted: unknown issuer".into()
            }
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names = certificate
                .map(names_of)
                .filter(|names| !names.is_empty())
                .unwrap_or_else(|| presented.join(", "));
            format!(
                "name mismatch: certificate is for {}, not {}",
                if names.is_empty() {
                    "no name".into()
                } else {
                    names
                },
                expected.to_str()
            )
        }
        CertificateError::NotValidForName => {
            let names = certificate.map(names_of).unwrap_or_default();
            let wanted = server_name
                .map(|n| n.to_str().into_owned())
                .unwrap_or_default();
            format!(
                "name mismatch: certificate is for {}, not {wanted}",
                if names.is_empty() {
                    "no name".into()
                } else {
                    names
                }
            )
        }
        CertificateError::BadSignature => "certificate signature is invalid".into(),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "certificate is signed with an unsupported algorithm, or not by a trusted CA".into()
        }
        CertificateError::Revoked => "certificate has been revoked".into(),
        CertificateError::BadEncoding => "certificate is malformed".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not meant for a TLS server (extended key usage)".into()
        }
        other => format!("certificate refused: {other}"),
    }
}

/// The DNS names and addresses a certificate is for (subjectAltName), comma-separated.
fn names_of(certificate: &X509Certificate<'_>) -> String {
    let Ok(Some(san)) = certificate.subject_alternative_name() else {
        return String::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }

    #[test]
    fn sentences_without_a_certificate() {
        let expired = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(10)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(0)),
        });
        assert_eq!(
            describe(&expired),
            "certificate has expired on 1970-01-01 00:00:00 UTC"
        );
        let io = std::io::Error::other(expired);
        assert_eq!(
            describe_chain(&io).as_deref(),
            Some("certificate has expired on 1970-01-01 00:00:00 UTC")
        );
        assert_eq!(describe_chain(&std::io::Error::other("plain")), None);
    }
}
