//! Connection strings: they carry credentials, so what is stored, logged or shown is
//! always the [`redact`]ed form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Removes `user:password@` from a connection string.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(host_end);
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // Query options such as password-bearing TLS settings are not kept either.
    let path = tail.split('?').next().unwrap_or("");
    format!("{scheme}://{hosts}{path}")
}

/// A connection string as a request carries it: the full string for connecting,
/// the redacted one for everything else (`Debug`, serialization, messages).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString(String);

impl ConnectionString {
    /// Wraps a connection string.
    pub fn new(uri: impl Into<String>) -> Self {
        Self(uri.into())
    }

    /// The full string, credentials included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Without credentials or query options.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl std::fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for ConnectionString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for ConnectionString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_survive_redaction() {
        assert_eq!(
            redact("mongodb://u:p%40ss@h1:27017,h2/app?authSource=admin&tlsCertificateKeyFilePassword=x"),
            "mongodb://h1:27017,h2/app"
        );
        assert_eq!(
            redact("mongodb+srv://c.example.net/"),
            "mongodb+srv://c.example.net/"
        );
    }

    #[test]
    fn credentials_never_show() {
        let c =
            ConnectionString::new("mongodb://u:s3cret@h:27017/db?tlsCertificateKeyFilePassword=x");
        for shown in [
            format!("{c:?}"),
            c.to_string(),
            serde_json::to_string(&c).unwrap(),
        ] {
            assert!(
                !shown.contains("s3cret") && !shown.contains("tlsCertificate"),
                "{shown}"
            );
            assert!(shown.contains("mongodb://h:27017/db"), "{shown}");
        }
        assert!(c.expose().contains("s3cret"));
    }
}
