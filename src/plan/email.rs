//! Email notifications over SMTP: STARTTLS (the default, port 587), implicit TLS (465)
//! or, for a relay on this machine or a test sink, none (25). Credentials come from an
//! environment variable or a file, read when a message is sent; errors never hold them.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde::Serialize;

use super::notify::Notice;
use super::PasswordSource;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (refused if the server cannot).
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No encryption: only for a relay on this machine or a test sink.
    None,
}

impl Security {
    /// The setting called `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "starttls" => Security::Starttls,
            "tls" => Security::Tls,
            "none" => Security::None,
            _ => return None,
        })
    }

    fn default_port(self) -> u16 {
        match self {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

/// An email target.
#[derive(Clone, Debug, Serialize)]
pub struct Email {
    /// Recipients (checked addresses).
    pub to: Vec<String>,
    /// Sender.
    pub from: String,
    /// SMTP server host name.
    pub server: String,
    /// Port (default: by `security`).
    pub port: Option<u16>,
    pub security: Security,
    /// Login name, when the server wants one.
    pub username: Option<String>,
    /// Where its password comes from (`Ask`: none).
    pub password: PasswordSource,
    /// Extra trusted certificates (PEM), for a relay with a private CA.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Whether `s` is an address lettre accepts ("ops@example.net", "Ops <ops@example.net>").
pub fn valid_address(s: &str) -> bool {
    s.parse::<Mailbox>().is_ok()
}

impl Email {
    fn password(&self) -> Result<Option<String>, String> {
        match self
            .password
            .read()
            .map_err(|e| format!("SMTP password: {e}"))?
        {
            None => Ok(None),
            Some(p) => String::from_utf8(p.expose().to_vec())
                .map(Some)
                .map_err(|_| "SMTP password: not UTF-8".to_string()),
        }
    }

    /// Sends `notice` to every recipient in one message.
    pub fn send(&self, notice: &Notice) -> Result<(), String> {
        let parse = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("{a:?}: {e}"));
        let mut b = Message::builder()
            .from(parse(&self.from)?)
            .subject(format!(
                "[repo] {} {}: {}",
                notice.plan,
                notice.event.name(),
                notice.status
            ))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            b = b.to(parse(to)?);
        }
        let msg = b.body(body(notice)).map_err(|e| e.to_string())?;
        let port = self.port.unwrap_or(self.security.default_port());
        let builder = SmtpTransport::builder_dangerous(&self.server).tls(self.tls()?);
        let mut builder = builder.port(port).timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(pw)) = (&self.username, self.password()?) {
            builder = builder.credentials(Credentials::new(user.clone(), pw));
        }
        builder
            .build()
            .send(&msg)
            .map(drop)
            .map_err(|e| format!("sending to {}:{port}: {e}", self.server))
    }
}

impl Email {
    /// How to protect the connection: the certificate is always verified (against the
    /// usual roots plus `ca-file`), and STARTTLS is required, never optional.
    fn tls(&self) -> Result<Tls, String> {
        if self.security == Security::None {
            return Ok(Tls::None);
        }
        let mut params = TlsParameters::builder(self.server.clone());
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading ca-file {}: {e}", path.display()))?;
            for block in pem_blocks(&pem) {
                let cert = Certificate::from_pem(block.as_bytes())
                    .map_err(|e| format!("ca-file {}: {e}", path.display()))?;
                params = params.add_root_certificate(cert);
            }
        }
        let params = params
            .build_rustls()
            .map_err(|e| format!("TLS for {}: {e}", self.server))?;
        Ok(match self.security {
            Security::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        })
    }
}

/// Each `-----BEGIN CERTIFICATE-----` block of a PEM file, one certificate per block.
fn pem_blocks(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    let end = "-----END CERTIFICATE-----";
    text.split_inclusive(end)
        .filter_map(|part| {
            let start = part.find("-----BEGIN CERTIFICATE-----")?;
            part.ends_with(end).then(|| part[start..].to_string())
        })
        .collect()
}

/// The message text: the one-line summary, then the facts an operator looks for.
fn body(n: &Notice) -> String {
    let mut s = format!("{}\n\n", n.message);
    s.push_str(&format!("plan:       {}\n", n.plan));
    s.push_str(&format!("host:       {}\n", n.host));
    s.push_str(&format!("event:      {}\n", n.event.name()));
    s.push_str(&format!("status:     {}\n", n.status));
    if let Some(e) = &n.error {
        s.push_str(&format!("error:      {e}\n"));
    }
    if let Some(id) = &n.snapshot {
        s.push_str(&format!("snapshot:   {id}\n"));
    }
    s.push_str(&format!("duration:   {:.1} s\n", n.seconds));
    s.push_str(&format!("added:      {} bytes\n", n.bytes_added));
    s.push_str(&format!(
        "operation:  {} (details: repo status {})\n",
        n.operation, n.operation
    ));
    s
}
