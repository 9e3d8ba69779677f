//! The connection to a server and the one place driver errors become library errors.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
use mongodb::sync::Client;

use crate::error::{Error, Result};
use crate::mongo::uri::redact;

pub use crate::mongo::identity::server_identity;

/// A driver error as a sentence for people: the server's message and code, never the
/// documents or raw replies some driver errors carry.
pub fn describe_error(e: &mongodb::error::Error) -> String {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Command(c) => format!("{} (code {})", c.message, c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => format!("{} (code {})", w.message, w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
            format!("{} (code {})", w.message, w.code)
        }
        ErrorKind::InsertMany(f) => {
            let errs = f.write_errors.as_deref().unwrap_or_default();
            match errs.first() {
                Some(w) => format!(
                    "{} of the batch's documents refused, e.g. {} (code {})",
                    errs.len(),
                    w.message,
                    w.code
                ),
                None => f
                    .write_concern_error
                    .as_ref()
                    .map_or_else(|| "write failed".to_string(), |w| w.message.clone()),
            }
        }
        // The driver's debug framing ("Kind: I/O error: …, labels: {}, source: None") is
        // cut to the reason.
        _ => {
            let s = e.to_string();
            let s = s.split(", server response:").next().unwrap_or_default();
            let s = s.split(", labels: ").next().unwrap_or_default();
            let s = s.strip_prefix("Kind: ").unwrap_or(s);
            s.chars().take(300).collect()
        }
    }
}

/// MongoDB's code for an operation the user has no right to (a `read` role without
/// `local`, say).
const UNAUTHORIZED: i32 = 13;

/// The library error for a failed MongoDB operation (`what` says which): [`Error::Denied`]
/// when the server refused the user the operation, otherwise [`Error::Source`].
pub fn mongo_error(what: &str, e: &mongodb::error::Error) -> Error {
    let message = format!("MongoDB: {what}: {}", describe_error(e));
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) if c.code == UNAUTHORIZED => Error::Denied(message),
        _ => Error::Source(message),
    }
}

/// [`mongo_error`] for `map_err`.
pub fn db_err(what: &str, e: mongodb::error::Error) -> Error {
    mongo_error(what, &e)
}

/// The server's `hello` reply (replica set name, cluster time, last write, ...).
pub fn hello(client: &Client) -> Result<Document> {
    client
        .database("admin")
        .run_command(doc! {"hello": 1})
        .run()
        .map_err(|e| db_err("hello", e))
}

/// Whether a `hello` reply is a mongos's (a sharded cluster's router, which serves no
/// oplog of its own).
pub fn is_mongos(hello: &Document) -> bool {
    hello.get_str("msg") == Ok("isdbgrid")
}

/// The first server's error in a server-selection failure ("Connection refused (os error
/// 111)"), or a short generic reason.
fn selection_cause(message: &str) -> String {
    message
        .split("Error: ")
        .nth(1)
        .map(|s| s.split(", labels").next().unwrap_or(s))
        .map(|s| {
            s.trim_start_matches("Kind: ")
                .trim_end_matches([' ', '}', ']', ','])
        })
        .filter(|s| !s.is_empty())
        .map_or_else(
            || "no reachable server".to_string(),
            |s| s.chars().take(200).collect(),
        )
}

/// Connects and checks the server answers (and the credentials work).
pub fn connect(uri: &str) -> Result<Client> {
    let mut opts = ClientOptions::parse(uri)
        .run()
        .map_err(|e| db_err("bad connection string", e))?;
    opts.app_name = Some("repo".into());
    if opts.server_selection_timeout.is_none() {
        opts.server_selection_timeout = Some(Duration::from_secs(10));
    }
    if opts.connect_timeout.is_none() {
        opts.connect_timeout = Some(Duration::from_secs(10));
    }
    let hosts: Vec<String> = opts.hosts.iter().map(|h| h.to_string()).collect();
    let wait = opts.server_selection_timeout.unwrap_or_default();
    let client = Client::with_options(opts).map_err(|e| db_err("client", e))?;
    client
        .database("admin")
        .run_command(doc! {"ping": 1})
        .run()
        .map_err(|e| match e.kind.as_ref() {
            // The driver's message is a dump of its topology; say what was tried instead.
            mongodb::error::ErrorKind::ServerSelection { message, .. } => Error::Source(format!(
                "MongoDB: cannot reach {}: no answer within {} s ({}); check the host and \
                 port, that the server runs and is reachable from here (a longer wait: \
                 serverSelectionTimeoutMS in the connection string)",
                hosts.join(", "),
                wait.as_secs_f64(),
                selection_cause(message)
            )),
            _ => db_err(&format!("cannot reach {}", redact(uri)), e),
        })?;
    Ok(client)
}

#[cfg(test)]
mod error_tests {
    use mongodb::bson::doc;
    use mongodb::error::{CommandError, ErrorKind};

    use crate::error::Error;

    fn command(code: i32, name: &str) -> mongodb::error::Error {
        let c: CommandError = mongodb::bson::from_document(
            doc! {"code": code, "codeName": name, "errmsg": "not authorized on local"},
        )
        .unwrap();
        ErrorKind::Command(c).into()
    }

    #[test]
    fn only_unauthorized_is_denied_and_a_lost_connection_reads_as_its_reason() {
        let e = super::mongo_error("reading the oplog", &command(13, "Unauthorized"));
        assert!(matches!(&e, Error::Denied(m)
            if m == "MongoDB: reading the oplog: not authorized on local (code 13)"));
        let e = super::mongo_error(
            "reading the oplog",
            &command(11600, "InterruptedAtShutdown"),
        );
        assert!(matches!(e, Error::Source(_)));
        let lost = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "unexpected end of file");
        let e = super::mongo_error("reading the oplog", &lost.into());
        assert!(
            matches!(&e, Error::Source(m)
            if m == "MongoDB: reading the oplog: I/O error: unexpected end of file"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod selection_tests {
    #[test]
    fn a_topology_dump_becomes_its_cause() {
        let m = "Server selection timeout: No available servers. Topology: { Type: Unknown, Servers: [ { Address: 127.0.0.1:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), labels: {} } ] }";
        assert_eq!(
            super::selection_cause(m),
            "I/O error: Connection refused (os error 111)"
        );
        assert_eq!(super::selection_cause("nothing"), "no reachable server");
    }
}
