//! The HTTP verdict, one pure step per expectation (certificate, status, headers, body), each
//! a [`Finding`]: `Err` ends the check unhealthy, `Ok(Some)` is a degraded reason. The check
//! chains them with `?` (see `HttpProbe::judge`), so the first unhealthy step is the reason.

use exaprobe_core::Finding;
use exaprobe_core::kit::reason::preview;
use reqwest::header::HeaderMap;

use crate::options::{HeaderExpectation, StatusRanges};

/// A server certificate's validity period, in UNIX seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Validity {
    /// Not valid before this second.
    pub(crate) not_before: i64,
    /// Not valid after this second.
    pub(crate) not_after: i64,
}

/// An expired or not yet valid certificate is unhealthy (also with `--insecure`, and on a kept
/// connection that outlived its certificate); `--cert-expiry-warn` (`warn_days`) grades only a
/// certificate that is valid `now`.
pub(crate) fn certificate(validity: Validity, now: i64, warn_days: Option<u32>) -> Finding {
    if now > validity.not_after {
        return Err(format!(
            "certificate has expired on {}",
            exaprobe_tls::utc_date(validity.not_after)
        ));
    }
    if now < validity.not_before {
        return Err(format!(
            "certificate is not valid before {}",
            exaprobe_tls::utc_date(validity.not_before)
        ));
    }
    let Some(warn_days) = warn_days else {
        return Ok(None);
    };
    let left = (validity.not_after - now).div_euclid(86_400);
    Ok((left < i64::from(warn_days)).then(|| {
        format!(
            "certificate expires in {left} days ({}), under --cert-expiry-warn {warn_days}",
            exaprobe_tls::utc_date(validity.not_after)
        )
    }))
}

/// The status code must be one of `--expect-status`.
pub(crate) fn status(status: u16, expected: &StatusRanges) -> Finding {
    if expected.contains(status) {
        Ok(None)
    } else {
        Err(format!("status {status}, expected {expected}"))
    }
}

/// Every `--expect-header` must be met; the first one that is not is the reason.
pub(crate) fn headers(headers: &HeaderMap, expected: &[HeaderExpectation]) -> Finding {
    for expectation in expected {
        expectation.check(headers)?;
    }
    Ok(None)
}

/// The body (its first `--max-body-bytes`) must match `--expect-body` and must not match
/// `--reject-body`.
pub(crate) fn body(
    body: &[u8],
    expect: Option<&regex::bytes::Regex>,
    reject: Option<&regex::bytes::Regex>,
) -> Finding {
    if let Some(pattern) = expect
        && !pattern.is_match(body)
    {
        return Err(format!(
            "body does not match --expect-body '{pattern}' (first bytes: '{}')",
            preview(body)
        ));
    }
    if let Some(pattern) = reject
        && pattern.is_match(body)
    {
        return Err(format!("body matches --reject-body '{pattern}'"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    const DAY: i64 = 86_400;
    /// 2025-01-01 00:00:00 UTC.
    const NOW: i64 = 1_735_689_600;

    #[test]
    fn an_expired_certificate_is_unhealthy_whatever_the_warning() {
        let expired = Validity {
            not_before: NOW - 10 * DAY,
            not_after: NOW - 1,
        };
        assert_eq!(
            certificate(expired, NOW, Some(30)),
            Err("certificate has expired on 2024-12-31 23:59:59 UTC".into())
        );
    }

    #[test]
    fn a_certificate_not_yet_valid_is_unhealthy() {
        let early = Validity {
            not_before: NOW + DAY,
            not_after: NOW + 10 * DAY,
        };
        assert_eq!(
            certificate(early, NOW, None),
            Err("certificate is not valid before 2025-01-02 00:00:00 UTC".into())
        );
    }

    #[test]
    fn a_certificate_close_to_expiry_is_degraded_only_under_the_warning() {
        let valid = Validity {
            not_before: NOW - DAY,
            not_after: NOW + 9 * DAY + 5,
        };
        assert_eq!(
            certificate(valid, NOW, Some(10)),
            Ok(Some(
                "certificate expires in 9 days (2025-01-10 00:00:05 UTC), under --cert-expiry-warn 10"
                    .into()
            ))
        );
        assert_eq!(certificate(valid, NOW, Some(9)), Ok(None));
        assert_eq!(certificate(valid, NOW, None), Ok(None));
    }

    #[test]
    fn a_status_outside_the_list_is_unhealthy() {
        let expected: StatusRanges = "200-299,301".parse().unwrap();
        assert_eq!(status(301, &expected), Ok(None));
        assert_eq!(
            status(503, &expected),
            Err("status 503, expected 200-299,301".into())
        );
    }

    #[test]
    fn the_first_header_expectation_not_met_is_the_reason() {
        let expected: Vec<HeaderExpectation> = ["X-Ready: ^yes$", "X-Zone: ^a$"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert("x-ready", HeaderValue::from_static("yes"));
        assert_eq!(
            super::headers(&headers, &expected),
            Err("header x-zone missing".into())
        );
        headers.insert("x-zone", HeaderValue::from_static("a"));
        assert_eq!(super::headers(&headers, &expected), Ok(None));
    }

    #[test]
    fn the_body_must_match_and_must_not_be_rejected() {
        let expect = regex::bytes::Regex::new("^ok").unwrap();
        let reject = regex::bytes::Regex::new("maintenance").unwrap();
        assert_eq!(body(b"ok\n", Some(&expect), Some(&reject)), Ok(None));
        assert_eq!(
            body(b"down\r\nfor a while", Some(&expect), None),
            Err(
                "body does not match --expect-body '^ok' (first bytes: 'down  for a while')".into()
            )
        );
        assert_eq!(
            body(b"ok: maintenance", Some(&expect), Some(&reject)),
            Err("body matches --reject-body 'maintenance'".into())
        );
        assert_eq!(body(b"anything", None, None), Ok(None));
    }
}
