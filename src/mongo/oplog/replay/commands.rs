//! Replaying commands: DDL (create, drop, rename, indexes, collMod, …) and transactions
//! logged as `applyOps`, each entry of which is applied like a top-level one.

use super::*;

impl Replayer<'_> {
    /// DDL, and transactions logged as applyOps.
    pub(super) fn command(&mut self, entry: &Document, ns: &str, ts: ClusterTime) -> Result<()> {
        let o = entry
            .get_document("o")
            .map_err(|_| bad(ts, "no o document"))?;
        let db = ns.split('.').next().unwrap_or("");
        let Some((name, _)) = o.iter().next() else {
            return Err(bad(ts, "empty command"));
        };
        let name = name.as_str();
        if name == "applyOps" {
            // A transaction's document changes join the batches in their order; its own
            // DDL (if any) flushes like any other.
            let inner = o.get_array("applyOps").map_err(|_| bad(ts, "applyOps"))?;
            for op in inner {
                let op = op.as_document().ok_or_else(|| bad(ts, "applyOps entry"))?;
                self.apply_doc(op, ts)?;
            }
            return Ok(());
        }
        // DDL acts on what came before it.
        self.flush()?;
        // Every other command names a collection of `db` (or the database itself).
        let coll_ns = |field: &str| -> Result<String> {
            o.get_str(field)
                .map(|c| format!("{db}.{c}"))
                .map_err(|_| bad(ts, format!("{name} without a collection name")))
        };
        match name {
            "create" | "drop" | "createIndexes" | "commitIndexBuild" | "dropIndexes"
            | "deleteIndexes" | "collMod" => {
                let src = coll_ns(name)?;
                if !self.sel.wants(&src) {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                self.ddl(name, o, &src, ts)?;
            }
            "startIndexBuild" | "abortIndexBuild" => self.stats.skipped += 1,
            "renameCollection" => {
                let from = o
                    .get_str("renameCollection")
                    .map_err(|_| bad(ts, "rename"))?;
                let to = o.get_str("to").map_err(|_| bad(ts, "rename without to"))?;
                match (self.sel.wants(from), self.sel.wants(to)) {
                    (false, false) => self.stats.skipped += 1,
                    (true, true) => {
                        let (fdb, fc) = self.sel.target(from)?;
                        let (tdb, tc) = self.sel.target(to)?;
                        let drop_target =
                            !matches!(o.get("dropTarget"), None | Some(Bson::Boolean(false)));
                        self.client
                            .database("admin")
                            .run_command(doc! {
                                "renameCollection": format!("{fdb}.{fc}"),
                                "to": format!("{tdb}.{tc}"),
                                "dropTarget": drop_target,
                            })
                            .run()
                            .map_err(|e| db_err(&format!("renaming {from} to {to}"), e))?;
                        self.known.remove(from);
                        self.known.insert(to.to_string());
                        self.stats.commands += 1;
                    }
                    (true, false) => {
                        // Renamed out of the selection: gone from what is restored.
                        self.ddl(
                            "drop",
                            &doc! {"drop": from.split_once('.').map_or("", |x| x.1)},
                            from,
                            ts,
                        )?;
                    }
                    (false, true) => {
                        return Err(bad(
                            ts,
                            format!("{from} (not restored) was renamed to {to} (restored)"),
                        ))
                    }
                }
            }
            "dropDatabase" => {
                let gone: Vec<String> = self
                    .known
                    .iter()
                    .filter(|n| n.split('.').next() == Some(db) && self.sel.wants(n))
                    .cloned()
                    .collect();
                for n in gone {
                    let c = n.split_once('.').map_or("", |x| x.1).to_string();
                    self.ddl("drop", &doc! {"drop": c}, &n, ts)?;
                }
            }
            other => return Err(bad(ts, format!("unsupported command {other}"))),
        }
        self.stats.applied += 1;
        self.stats.last = Some(ts);
        Ok(())
    }

    fn ddl(&mut self, name: &str, o: &Document, src: &str, ts: ClusterTime) -> Result<()> {
        let (tdb, tcoll) = self.sel.target(src)?;
        let db = self.client.database(&tdb);
        let run = |cmd: Document, ok_codes: &[i32]| -> Result<()> {
            match db.run_command(cmd).run() {
                Ok(_) => Ok(()),
                Err(e) => match &*e.kind {
                    mongodb::error::ErrorKind::Command(c) if ok_codes.contains(&c.code) => Ok(()),
                    _ => Err(db_err(&format!("{name} on {tdb}.{tcoll}"), e)),
                },
            }
        };
        match name {
            "create" => {
                let mut cmd = doc! {"create": &tcoll};
                for (k, v) in o {
                    match k.as_str() {
                        "create" | "idIndex" => {}
                        // SecantusDB logs a view's pipeline under this name.
                        "viewPipeline" => {
                            cmd.insert("pipeline", v.clone());
                        }
                        "viewOn" => {
                            let on = v.as_str().unwrap_or_default();
                            let (_, c) = self
                                .sel
                                .target(&format!("{}.{on}", src.split('.').next().unwrap_or("")))?;
                            cmd.insert("viewOn", c);
                        }
                        _ => {
                            cmd.insert(k.clone(), v.clone());
                        }
                    }
                }
                crate::mongo::restore::implied_span_left_out(&mut cmd);
                // 48: exists already (it was in the snapshot's target).
                run(cmd, &[48])?;
                self.known.insert(src.to_string());
            }
            "drop" => {
                // 26: already gone.
                run(doc! {"drop": &tcoll}, &[26])?;
                self.known.remove(src);
            }
            "createIndexes" | "commitIndexBuild" => {
                let specs: Vec<Bson> = match o.get_array("indexes") {
                    Ok(list) => list.clone(),
                    // mongod logs one index per entry, its spec beside the collection name.
                    Err(_) => {
                        let mut spec = o.clone();
                        spec.remove(name);
                        vec![Bson::Document(spec)]
                    }
                };
                let specs: Vec<Bson> = specs
                    .into_iter()
                    .map(|s| match s {
                        Bson::Document(mut d) => {
                            crate::mongo::restore::indexes::strip_catalog_state(&mut d);
                            Bson::Document(d)
                        }
                        other => other,
                    })
                    .collect();
                run(doc! {"createIndexes": &tcoll, "indexes": specs}, &[])?;
            }
            "dropIndexes" | "deleteIndexes" => {
                let index = o
                    .get("index")
                    .cloned()
                    .ok_or_else(|| bad(ts, "dropIndexes without index"))?;
                // 27: index not found.
                run(doc! {"dropIndexes": &tcoll, "index": index}, &[27])?;
            }
            "collMod" => {
                let mut cmd = doc! {"collMod": &tcoll};
                for (k, v) in o {
                    if k != "collMod" {
                        cmd.insert(k.clone(), v.clone());
                    }
                }
                run(cmd, &[])?;
            }
            _ => return Err(bad(ts, format!("unsupported command {name}"))),
        }
        self.stats.commands += 1;
        Ok(())
    }
}
