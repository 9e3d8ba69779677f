//! One OpenDAL operator per kind of object store, configured from the location, the
//! options and the variables each provider's own tools read.

use opendal::Operator;

use super::super::target::{ObjectOptions, Target};
use crate::error::{Error, Result};

/// The operator for `target` (nothing is sent yet).
pub(super) fn operator(location: &str, target: &Target, o: &ObjectOptions) -> Result<Operator> {
    // The process-wide HTTP client (reqwest); idempotent.
    opendal::install_default();
    match target {
        Target::S3 {
            endpoint,
            bucket,
            prefix,
        } => s3(location, endpoint.as_deref(), bucket, prefix, o),
        Target::Gcs { bucket, prefix } => gcs(location, bucket, prefix, o),
        Target::Azure { container, prefix } => azure(location, container, prefix, o),
        Target::Sftp {
            user,
            host,
            port,
            path,
        } => sftp(location, user.as_deref(), host, *port, path, o),
    }
}

fn invalid(location: &str, e: opendal::Error) -> Error {
    Error::Invalid(format!("{location}: {e}"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn root_of(prefix: &str) -> String {
    format!("/{}", prefix.trim_matches('/'))
}

fn s3(
    location: &str,
    endpoint: Option<&str>,
    bucket: &str,
    prefix: &str,
    o: &ObjectOptions,
) -> Result<Operator> {
    let mut b = opendal::services::S3::default()
        .bucket(bucket)
        .root(&root_of(prefix));
    if let Some(e) = o.endpoint.as_deref().or(endpoint) {
        b = b.endpoint(e);
    }
    let region = o
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    b = b.region(&region);
    if o.virtual_host_style {
        b = b.enable_virtual_host_style();
    }
    if let Some(c) = &o.storage_class {
        b = b.default_storage_class(c);
    }
    if o.no_ambient_credentials {
        b = b.disable_config_load().disable_ec2_metadata();
        if let (Some(k), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            b = b.access_key_id(&k).secret_access_key(&s);
        }
    }
    Operator::new(b).map_err(|e| invalid(location, e))
}

fn gcs(location: &str, bucket: &str, prefix: &str, o: &ObjectOptions) -> Result<Operator> {
    let mut b = opendal::services::Gcs::default()
        .bucket(bucket)
        .root(&root_of(prefix));
    // Google's tools accept the emulator's address with or without a scheme.
    let emulator = env("STORAGE_EMULATOR_HOST").map(|h| {
        if h.contains("://") {
            h
        } else {
            format!("http://{h}")
        }
    });
    if let Some(e) = o.endpoint.as_ref().or(emulator.as_ref()) {
        b = b.endpoint(e);
    }
    if let Some(c) = &o.storage_class {
        b = b.default_storage_class(c);
    }
    let credentials = env("GOOGLE_APPLICATION_CREDENTIALS");
    if let Some(p) = &credentials {
        b = b.credential_path(p);
    }
    // Like Google's client libraries, talk to an emulator anonymously unless
    // credentials are given (rather than asking a VM metadata server for a token).
    let anonymous_emulator = emulator.is_some() && credentials.is_none();
    if o.no_ambient_credentials || anonymous_emulator {
        b = b
            .disable_vm_metadata()
            .disable_config_load()
            .skip_signature();
    }
    Operator::new(b).map_err(|e| invalid(location, e))
}

fn azure(location: &str, container: &str, prefix: &str, o: &ObjectOptions) -> Result<Operator> {
    let b = match env("AZURE_STORAGE_CONNECTION_STRING") {
        // The form Azure's own tools print (and `UseDevelopmentStorage=true`
        // for Azurite): account, key or SAS, and endpoint in one variable.
        Some(conn) => opendal::services::Azblob::from_connection_string(&conn).map_err(|e| {
            Error::Invalid(format!("{location}: AZURE_STORAGE_CONNECTION_STRING: {e}"))
        })?,
        None => {
            // restic's variable names are accepted too, for users moving over.
            let account = env("AZURE_STORAGE_ACCOUNT")
                .or_else(|| env("AZURE_ACCOUNT_NAME"))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{location}: set AZURE_STORAGE_ACCOUNT (and \
                             AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN), or \
                             AZURE_STORAGE_CONNECTION_STRING"
                    ))
                })?;
            let endpoint = env("AZURE_STORAGE_ENDPOINT")
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            let mut b = opendal::services::Azblob::default()
                .endpoint(&endpoint)
                .account_name(&account);
            if let Some(k) = env("AZURE_STORAGE_KEY").or_else(|| env("AZURE_ACCOUNT_KEY")) {
                b = b.account_key(&k);
            }
            if let Some(t) = env("AZURE_STORAGE_SAS_TOKEN").or_else(|| env("AZURE_ACCOUNT_SAS")) {
                b = b.sas_token(&t);
            }
            b
        }
    };
    let mut b = b.container(container).root(&root_of(prefix));
    if let Some(e) = &o.endpoint {
        b = b.endpoint(e);
    }
    Operator::new(b).map_err(|e| invalid(location, e))
}

fn sftp(
    location: &str,
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    path: &str,
    o: &ObjectOptions,
) -> Result<Operator> {
    // Without a port, the ssh client's configuration (Host aliases) decides.
    let endpoint = match port {
        Some(p) => format!("ssh://{host}:{p}"),
        None => format!("ssh://{host}"),
    };
    let mut b = opendal::services::Sftp::default()
        .endpoint(&endpoint)
        .root(path)
        .known_hosts_strategy(if o.ssh_accept_new_host {
            "add"
        } else {
            "strict"
        });
    if let Some(u) = user {
        b = b.user(u);
    }
    if let Some(k) = &o.ssh_key {
        b = b.key(k);
    }
    Operator::new(b).map_err(|e| invalid(location, e))
}

/// For a refused request: where credentials for `location`'s kind of store are looked for,
/// and which of those places are set here (names only, never values), so the message says
/// what to fix instead of the signing library's internals.
pub(super) fn credential_sources(location: &str) -> Option<String> {
    let set = |names: &[&str]| -> String {
        names
            .iter()
            .map(|n| {
                format!(
                    "{n} {}",
                    if env(n).is_some() {
                        "(set)"
                    } else {
                        "(not set)"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let home_file = |rel: &str| {
        let p = dirs::home_dir().map(|h| h.join(rel));
        let there = p.as_ref().is_some_and(|p| p.exists());
        format!("~/{rel} ({})", if there { "present" } else { "absent" })
    };
    let scheme = location.split(':').next().unwrap_or("");
    Some(match scheme {
        "s3" => format!(
            "credentials are read from {}, then {}, {}, {}, then instance metadata",
            set(&[
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN"
            ]),
            set(&["AWS_PROFILE"]),
            home_file(".aws/credentials"),
            home_file(".aws/config"),
        ),
        "gs" => format!(
            "credentials are read from {}, then the VM's service account",
            set(&["GOOGLE_APPLICATION_CREDENTIALS"])
        ),
        "azure" => format!(
            "credentials are read from {}, or {} with {}",
            set(&["AZURE_STORAGE_CONNECTION_STRING"]),
            set(&["AZURE_STORAGE_ACCOUNT"]),
            set(&["AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"])
        ),
        _ => return None,
    })
}
