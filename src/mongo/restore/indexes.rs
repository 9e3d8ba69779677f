//! Index builds from the saved `listIndexes` specs, verbatim but for `v` and `ns`: every
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
            d
        })
        .collect()
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
