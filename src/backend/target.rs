//! Object-store repository locations (`s3:`, `gs:`, `azure:`, `sftp:`) and their
//! settings; plain data, so the CLI can parse them even in builds without OpenDAL.

use crate::error::{Error, Result};

/// Where a repository is: one of the supported services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `s3:[https://host[:port]/]bucket[/prefix]`
    S3 {
        /// Service URL; None = AWS (region from options or the environment).
        endpoint: Option<String>,
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket.
        prefix: String,
    },
    /// `gs:bucket[/prefix]`
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Object prefix.
        prefix: String,
    },
    /// `azure:container[/prefix]`
    Azure {
        /// Container name.
        container: String,
        /// Blob prefix.
        prefix: String,
    },
    /// `sftp:[user@]host[:port]:/path`
    Sftp {
        /// Login name (None = the ssh client's default).
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// TCP port (None = the ssh client's default or its configuration).
        port: Option<u16>,
        /// Directory on the server.
        path: String,
    },
}

/// Tuning and credentials that are not part of the location.
#[derive(Clone, Debug, Default)]
pub struct ObjectOptions {
    /// Service endpoint (overrides the location's or the default).
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// S3: address buckets as `bucket.host` (true) instead of `host/bucket` (false, the
    /// default, which S3-compatible servers expect).
    pub virtual_host_style: bool,
    /// Storage class for new objects (S3: STANDARD_IA, …; GCS: NEARLINE, …).
    pub storage_class: Option<String>,
    /// Requests in flight at once (default 8).
    pub connections: Option<usize>,
    /// Retries of a failed request (default 8).
    pub retries: Option<usize>,
    /// Upload bandwidth cap, bytes per second.
    pub limit_upload: Option<u64>,
    /// Download bandwidth cap, bytes per second.
    pub limit_download: Option<u64>,
    /// SFTP: private key file.
    pub ssh_key: Option<String>,
    /// SFTP: accept (and remember) the host key of a server never seen before, instead of
    /// refusing hosts missing from known_hosts.
    pub ssh_accept_new_host: bool,
    /// Testing only: fail this fraction of requests before they reach the service.
    pub fault_ratio: Option<f64>,
    /// Do not read credentials from the cloud SDKs' config files or instance metadata
    /// (environment variables still count); tests set it so nothing reaches a real cloud.
    pub no_ambient_credentials: bool,
}

fn bucket_and_prefix(rest: &str) -> Result<(String, String)> {
    let rest = rest.trim_start_matches('/');
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Invalid(format!("no bucket in {rest:?}")));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl Target {
    /// Parses `s3:…`, `gs:…`, `azure:…` or `sftp:…`; None for anything else (a directory).
    pub fn parse(s: &str) -> Result<Option<Target>> {
        let Some((scheme, rest)) = s.split_once(':') else {
            return Ok(None);
        };
        let bad = |why: &str| Error::Invalid(format!("repository location {s:?}: {why}"));
        let t = match scheme {
            "s3" => {
                if let Some(url) = rest
                    .strip_prefix("https://")
                    .map(|r| ("https", r))
                    .or_else(|| rest.strip_prefix("http://").map(|r| ("http", r)))
                {
                    let (proto, r) = url;
                    let (host, path) = r
                        .split_once('/')
                        .ok_or_else(|| bad("no bucket after the endpoint"))?;
                    let (bucket, prefix) =
                        bucket_and_prefix(path).map_err(|e| bad(&e.to_string()))?;
                    Target::S3 {
                        endpoint: Some(format!("{proto}://{host}")),
                        bucket,
                        prefix,
                    }
                } else {
                    let (bucket, prefix) =
                        bucket_and_prefix(rest).map_err(|e| bad(&e.to_string()))?;
                    Target::S3 {
                        endpoint: None,
                        bucket,
                        prefix,
                    }
                }
            }
            "gs" => {
                let (bucket, prefix) = bucket_and_prefix(rest).map_err(|e| bad(&e.to_string()))?;
                Target::Gcs { bucket, prefix }
            }
            "azure" => {
                let (container, prefix) =
                    bucket_and_prefix(rest).map_err(|e| bad(&e.to_string()))?;
                Target::Azure { container, prefix }
            }
            "sftp" => {
                let (login, path) = rest
                    .split_once(":/")
                    .ok_or_else(|| bad("expected sftp:[user@]host[:port]:/path"))?;
                let (user, hostport) = match login.split_once('@') {
                    Some((u, h)) => (Some(u.to_string()), h),
                    None => (None, login),
                };
                let (host, port) = match hostport.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p.parse().map_err(|_| bad("bad port"))?)),
                    None => (hostport, None),
                };
                if host.is_empty() {
                    return Err(bad("no host"));
                }
                Target::Sftp {
                    user,
                    host: host.to_string(),
                    port,
                    path: format!("/{}", path.trim_end_matches('/')),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Target::parse("s3:https://s3.example.com:9000/bucket/some/prefix/").unwrap(),
            Some(Target::S3 {
                endpoint: Some("https://s3.example.com:9000".into()),
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            })
        );
        assert_eq!(
            Target::parse("s3:bucket").unwrap(),
            Some(Target::S3 {
                endpoint: None,
                bucket: "bucket".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            Target::parse("gs:b/p").unwrap(),
            Some(Target::Gcs {
                bucket: "b".into(),
                prefix: "p".into()
            })
        );
        assert_eq!(
            Target::parse("azure:c").unwrap(),
            Some(Target::Azure {
                container: "c".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            Target::parse("sftp:me@host:2222:/srv/repo").unwrap(),
            Some(Target::Sftp {
                user: Some("me".into()),
                host: "host".into(),
                port: Some(2222),
                path: "/srv/repo".into()
            })
        );
        // A host alias from the ssh configuration brings its own port and user.
        assert_eq!(
            Target::parse("sftp:backup-host:/srv/repo/").unwrap(),
            Some(Target::Sftp {
                user: None,
                host: "backup-host".into(),
                port: None,
                path: "/srv/repo".into()
            })
        );
        assert_eq!(Target::parse("/plain/dir").unwrap(), None);
        assert!(Target::parse("s3:").is_err());
        assert!(Target::parse("sftp:host").is_err());
        assert!(Target::parse("s3:https://host-without-bucket").is_err());
    }
}
