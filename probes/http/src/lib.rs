//! The HTTP(S) check: one request, then status, body and headers are compared with what the
//! operator expects; TLS is verified (and a certificate close to expiry reports degraded).
//!
//! Built on reqwest with rustls (no OpenSSL). The client is built once and its connection pool
//! reused across checks, unless `--fresh-connection` asks for a new TCP (and TLS) handshake per
//! check. A request that fails on a reused connection before any response arrived is sent once
//! more on a fresh connection, within the same deadline (the server may have closed an idle
//! connection); a failure on a fresh connection is the verdict. Redirects are not followed and
//! proxy variables are ignored unless asked for: a health check tests the service, not a
//! proxy. Failure reasons name the phase that failed; the verdict is a chain of pure steps
//! (`verdict`: certificate, status, headers, body), the first unhealthy one ending the check.

mod connections;
mod options;
mod reason;
mod verdict;

use std::net::IpAddr;
use std::time::SystemTime;

use anyhow::{Context, Result};
use exaprobe_core::{Finding, Outcome, Probe};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use tokio::time::Instant;

use crate::connections::ConnectCounter;

pub use options::{ConnectTo, HeaderExpectation, HttpOptions, StatusRanges};

/// Checks one URL per check.
pub struct HttpProbe {
    client: reqwest::Client,
    /// Never keeps a connection: the one retry after a failure on a reused connection.
    fresh_client: reqwest::Client,
    connects: ConnectCounter,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    expect_status: StatusRanges,
    expect_body: Option<regex::bytes::Regex>,
    reject_body: Option<regex::bytes::Regex>,
    expect_headers: Vec<HeaderExpectation>,
    max_body_bytes: usize,
    cert_expiry_warn: Option<u32>,
}

impl std::fmt::Debug for HttpProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProbe")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}

impl HttpProbe {
    /// Build the client. `timeout` is the check deadline: the client's own deadlines sit just
    /// inside it, so a slow phase is reported by name before the runner gives up.
    pub fn new(options: &HttpOptions) -> Result<Self> {
        let mut url = options.url.clone();
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!(
                "--url {}: only http:// and https:// are supported",
                exaprobe_core::redact::for_display(url.as_str())
            );
        }
        if let Some(path) = &options.password_file {
            let password =
                exaprobe_core::secret::read_secret_file(path).context("--password-file")?;
            url.set_password(Some(&password))
                .map_err(|()| anyhow::anyhow!("--password-file: --url has no host for a user"))?;
        }
        exaprobe_core::secret::warn_password_on_command_line(
            "--password-file, or the URL in EXAPROBE_URL or the --config file",
        );
        let host = url.host_str().context("--url has no host")?.to_string();
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            headers.append(name.clone(), value.clone());
        }
        let body = match (&options.body, &options.body_file) {
            (Some(body), _) => Some(body.as_bytes().to_vec()),
            (None, Some(path)) => Some(
                std::fs::read(path).with_context(|| format!("--body-file {}", path.display()))?,
            ),
            (None, None) => None,
        };
        options
            .tls
            .warn_if_insecure(&exaprobe_core::redact::for_display(url.as_str()));
        let mut tls =
            exaprobe_tls::client_config(options.tls.verification(), &options.tls.files(true))?;
        tls.alpn_protocols = if options.http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        let resolve = match &options.connect_to {
            Some(connect_to) => {
                let port = url.port_or_known_default().unwrap_or(80);
                let (name, address) = connect_to.resolve(&host, port)?;
                if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
                    anyhow::bail!(
                        "--connect-to needs a host name in --url, not the address {host}"
                    );
                }
                Some((name, address))
            }
            None => None,
        };
        let connects = ConnectCounter::default();
        let build = |pooled: bool| {
            let mut builder = reqwest::Client::builder()
                .use_preconfigured_tls(tls.clone())
                .tls_info(true)
                .user_agent(concat!("exaprobe-http/", env!("CARGO_PKG_VERSION")))
                .connector_layer(connects.clone())
                .redirect(if options.follow_redirects {
                    reqwest::redirect::Policy::limited(10)
                } else {
                    reqwest::redirect::Policy::none()
                });
            if !options.use_env_proxy {
                builder = builder.no_proxy();
            }
            if !pooled {
                builder = builder.pool_max_idle_per_host(0);
            }
            if options.http2_prior_knowledge {
                builder = builder.http2_prior_knowledge();
            } else if options.http1_only {
                builder = builder.http1_only();
            }
            if let Some((name, address)) = &resolve {
                builder = builder.resolve(name, *address);
            }
            builder.build().context("building the HTTP client")
        };
        let client = build(!options.fresh_connection)?;
        let fresh_client = build(false)?;
        Ok(HttpProbe {
            client,
            fresh_client,
            connects,
            method: options.method.clone(),
            url,
            headers,
            body,
            expect_status: options.expect_status.clone(),
            expect_body: options.expect_body.clone(),
            reject_body: options.reject_body.clone(),
            expect_headers: options.expect_headers.clone(),
            max_body_bytes: options.max_body_bytes,
            cert_expiry_warn: options.cert_expiry_warn,
        })
    }

    async fn read_body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        while body.len() < self.max_body_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(reason::describe(&error, "reading the body")),
            }
        }
        body.truncate(self.max_body_bytes);
        Ok(body)
    }

    /// The certificate step: nothing to judge on a plain connection (or when the clock is
    /// before 1970).
    fn certificate(&self, response: &reqwest::Response) -> Finding {
        let (Some(validity), Some(now)) = (certificate_validity(response), unix_now()) else {
            return Ok(None);
        };
        verdict::certificate(validity, now, self.cert_expiry_warn)
    }

    /// The body step: the body is read only when an expectation needs it.
    async fn body(&self, response: &mut reqwest::Response) -> Finding {
        if self.expect_body.is_none() && self.reject_body.is_none() {
            return Ok(None);
        }
        let body = self.read_body(response).await?;
        verdict::body(&body, self.expect_body.as_ref(), self.reject_body.as_ref())
    }

    /// The steps in order, the first unhealthy one ending the check: the response, its
    /// certificate (an expired one before anything else), status, headers, body; a degraded
    /// certificate is the verdict only when everything else passed.
    async fn judge(&self, deadline: Instant) -> Finding {
        let mut response = self.response(deadline).await?;
        let degraded = self
            .certificate(&response)?
            .or(verdict::status(
                response.status().as_u16(),
                &self.expect_status,
            )?)
            .or(verdict::headers(response.headers(), &self.expect_headers)?)
            .or(self.body(&mut response).await?);
        Ok(degraded)
    }

    /// Send the request with `client`, within what is left before `deadline`.
    async fn send(
        &self,
        client: &reqwest::Client,
        deadline: Instant,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .timeout(deadline.saturating_duration_since(Instant::now()));
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        request.send().await
    }

    /// The response, retried once on a fresh connection when the request failed on a reused
    /// one before any response arrived (the server may have closed an idle connection); a
    /// failure on a fresh connection is the verdict.
    async fn response(&self, deadline: Instant) -> Result<reqwest::Response, String> {
        let opened = self.connects.get();
        match self.send(&self.client, deadline).await {
            Ok(response) => Ok(response),
            Err(error) if self.connects.get() == opened && reason::before_response(&error) => {
                tracing::debug!(
                    first = %reason::describe(&error, "waiting for the response"),
                    "the reused connection failed; retrying once on a fresh connection"
                );
                self.send(&self.fresh_client, deadline)
                    .await
                    .map_err(|error| reason::describe(&error, "waiting for the response"))
            }
            Err(error) => Err(reason::describe(&error, "waiting for the response")),
        }
    }
}

impl Probe for HttpProbe {
    /// `METHOD URL`, the URL's password shown as `***` (the shared redaction rule).
    fn describe(&self) -> String {
        format!(
            "{} {}",
            self.method,
            exaprobe_core::redact::for_display(self.url.as_str())
        )
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        Outcome::from(self.judge(deadline).await)
    }
}

/// The server certificate's validity period, when the connection was TLS.
fn certificate_validity(response: &reqwest::Response) -> Option<verdict::Validity> {
    let info = response.extensions().get::<reqwest::tls::TlsInfo>()?;
    let der = info.peer_certificate()?;
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let validity = certificate.validity();
    Some(verdict::Validity {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// Now, in UNIX seconds.
fn unix_now() -> Option<i64> {
    let elapsed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    i64::try_from(elapsed.as_secs()).ok()
}
