//! Which server a snapshot or an oplog slice came from, as the server says it, not as the
//! connection string spells it: `localhost` and `127.0.0.1`, `host:27017/?x` and
//! `host:27017?x`, one member or another of the same set are all one source, so a
//! snapshot and the oplog captured by `follow` always find each other (and two servers
//! that happen to share a connection string never do).
//!
//! - replica set: `replset:<setName>:<replicaSetId>` (from `replSetGetConfig`); servers
//!   that do not answer it (or a user without the privilege): `replset:<setName>:<its
//!   members, sorted>`;
//! - sharded cluster (mongos): `cluster:<clusterId>` (from `config.version`);
//! - standalone server (no oplog, so nothing to tie): `standalone:<hosts of the URI>`.

use mongodb::bson::{doc, Document};
use mongodb::sync::Client;

use crate::error::{Error, Result};

fn members(h: &Document) -> Vec<String> {
    let mut hosts: Vec<String> = ["hosts", "passives", "arbiters"]
        .iter()
        .filter_map(|k| h.get_array(k).ok())
        .flatten()
        .filter_map(|b| b.as_str().map(str::to_ascii_lowercase))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The identity of the server `client` (connected with `uri`) talks to; `hello` is its
/// `hello` reply.
pub fn server_identity(client: &Client, hello: &Document, uri: &str) -> Result<String> {
    if crate::mongo::client::is_mongos(hello) {
        let version = client
            .database("config")
            .collection::<Document>("version")
            .find_one(doc! {})
            .run()
            .map_err(|e| crate::mongo::client::mongo_error("reading config.version", &e))?;
        return version
            .as_ref()
            .and_then(|v| v.get_object_id("clusterId").ok())
            .map(|id| format!("cluster:{id}"))
            .ok_or_else(|| {
                Error::Source("MongoDB: the sharded cluster has no config.version clusterId".into())
            });
    }
    if let Ok(set) = hello.get_str("setName") {
        let id = client
            .database("admin")
            .run_command(doc! {"replSetGetConfig": 1})
            .run()
            .ok()
            .and_then(|r| {
                r.get_document("config")
                    .and_then(|c| c.get_document("settings"))
                    .and_then(|s| s.get_object_id("replicaSetId"))
                    .ok()
            });
        return Ok(match id {
            Some(id) => format!("replset:{set}:{id}"),
            None => format!("replset:{set}:{}", members(hello).join(",")),
        });
    }
    // A standalone server does not name itself; its address is all there is.
    let hosts = crate::mongo::uri::redact(uri);
    let hosts = hosts
        .split_once("://")
        .map_or(hosts.as_str(), |(_, h)| h)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(format!("standalone:{hosts}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_normalised() {
        let h = doc! {"hosts": ["B:1", "a:2"], "passives": ["c:3"], "arbiters": ["a:2"]};
        assert_eq!(members(&h), vec!["a:2", "b:1", "c:3"]);
    }
}
