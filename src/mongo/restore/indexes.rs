//! Index builds from the saved `listIndexes` specs, verbatim but for `v`, `ns` and the
//! catalog's own state ([`strip_catalog_state`], also used by the oplog replay): every
//! option survives whatever its type (`unique: 1`, `expireAfterSeconds: 3600.0`, …). The
//! `_id` index and a clustered collection's clustered index come with the collection and
//! are never sent to `createIndexes`. One index that fails does not keep the others from
//! being built; each failure is reported with the server's reason.

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Database;

use super::CollectionOutcome;
use crate::error::Result;
use crate::mongo::layout::Saved;

/// The specs to build for a saved collection.
pub(super) fn specs(s: &Saved) -> Vec<Document> {
    s.index_specs()
        .into_iter()
        .filter(|d| {
            let id_index = d.get_str("name") == Ok("_id_")
                || d.get_document("key")
                    .is_ok_and(|k| k.len() == 1 && k.contains_key("_id"));
            let clustered = matches!(d.get("clustered"), Some(Bson::Boolean(true)));
            !id_index && !clustered
        })
        .map(|mut d| {
            d.remove("v");
            d.remove("ns");
            strip_catalog_state(&mut d);
            d
        })
        .collect()
}

/// What a server's index catalog records beside an index's spec — how its keys are stored
/// and what the build found, not options — and `createIndexes` refuses as unknown fields.
/// Oplog entries carry them (SecantusDB logs `multikey` and `entryFormat` with each
/// spec; mongod's catalog has `multikeyPaths`, `head`, `ready`, the build's UUID), and a
/// server may list some: removed before an index is built from such a spec.
const CATALOG_STATE: &[&str] = &[
    "entryFormat",
    "multikey",
    "multikeyPaths",
    "head",
    "ready",
    "buildUUID",
    "indexBuildUUID",
    "backgroundSecondary",
    "runTwoPhaseIndexBuild",
];

/// Removes [`CATALOG_STATE`] fields from an index spec.
pub(crate) fn strip_catalog_state(spec: &mut Document) {
    for f in CATALOG_STATE {
        spec.remove(*f);
    }
}

/// Builds the saved indexes on `coll`, recording what was built and what failed.
pub(super) fn build(
    db: &Database,
    coll: &str,
    s: &Saved,
    out: &mut CollectionOutcome,
) -> Result<()> {
    let specs = specs(s);
    if specs.is_empty() {
        return Ok(());
    }
    let name = |d: &Document| d.get_str("name").unwrap_or("(unnamed)").to_string();
    let all: Vec<Bson> = specs.iter().cloned().map(Bson::Document).collect();
    if db
        .run_command(doc! {"createIndexes": coll, "indexes": all})
        .run()
        .is_ok()
    {
        out.indexes_created = specs.iter().map(name).collect();
        out.indexes = specs.len() as u64;
        return Ok(());
    }
    // Something was refused: one at a time, to build the rest and name the culprit.
    for spec in &specs {
        match db
            .run_command(doc! {"createIndexes": coll, "indexes": [spec.clone()]})
            .run()
        {
            Ok(_) => {
                out.indexes_created.push(name(spec));
                out.indexes += 1;
            }
            Err(e) => out.errors.push(format!(
                "index {} of {}.{coll} was not built: {}",
                name(spec),
                db.name(),
                super::insert::describe(&e)
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_state_is_left_out_and_every_option_kept() {
        let mut spec = doc! {
            "v": 2, "key": {"tags": 1}, "name": "tags_1", "multikey": true,
            "entryFormat": 4, "multikeyPaths": {"tags": [0]}, "sparse": 1,
            "partialFilterExpression": {"n": {"$gt": 5}}, "collation": {"locale": "fr"},
        };
        strip_catalog_state(&mut spec);
        assert_eq!(
            spec,
            doc! {
                "v": 2, "key": {"tags": 1}, "name": "tags_1", "sparse": 1,
                "partialFilterExpression": {"n": {"$gt": 5}}, "collation": {"locale": "fr"},
            }
        );
    }
}
