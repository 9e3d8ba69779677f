//! Rolling one document forward through an oplog update entry's `o`: a `$v: 2` delta in
//! either form servers write — mongod's compact diff (`u`/`i`/`d`/`s<field>`, arrays with
//! `a`/`l`/`u<n>`/`s<n>`) or the `updatedFields`/`removedFields`/`truncatedArrays`
//! description — old `$set`/`$unset` modifiers, or a whole replacement document.
//! Field order follows the server: changed fields stay in place, new ones go last.

use mongodb::bson::{Bson, Document};

use crate::error::{Error, Result};

fn bad(what: &str) -> Error {
    Error::Source(format!("oplog update: {what}"))
}

/// Applies update `o` to `doc` (the pre-image), in place.
pub fn apply_update(doc: &mut Document, o: &Document) -> Result<()> {
    if o.get("$v").and_then(as_int) == Some(2) {
        let diff = o
            .get_document("diff")
            .map_err(|_| bad("$v: 2 without a diff document"))?;
        let described = ["updatedFields", "removedFields", "truncatedArrays"]
            .iter()
            .any(|k| diff.contains_key(k));
        return if described {
            apply_description(doc, diff)
        } else {
            apply_doc_diff(doc, diff)
        };
    }
    if o.keys().any(|k| k.starts_with('$')) {
        return apply_modifiers(doc, o);
    }
    // A replacement keeps the document's _id (and puts it first, as servers do).
    let id = doc.get("_id").cloned();
    let mut out = Document::new();
    if let Some(id) = o.get("_id").cloned().or(id) {
        out.insert("_id", id);
    }
    for (k, v) in o {
        if k != "_id" {
            out.insert(k.clone(), v.clone());
        }
    }
    *doc = out;
    Ok(())
}

fn as_int(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// `{updatedFields: {path: value}, removedFields: [path], truncatedArrays: [{field, newSize}]}`:
/// sets first, then unsets, then truncations (each only ever touches what the update did).
fn apply_description(doc: &mut Document, diff: &Document) -> Result<()> {
    if let Ok(set) = diff.get_document("updatedFields") {
        for (path, v) in set {
            set_path(doc, path, v.clone())?;
        }
    }
    if let Ok(removed) = diff.get_array("removedFields") {
        for p in removed {
            let p = p
                .as_str()
                .ok_or_else(|| bad("removedFields holds a non-string"))?;
            unset_path(doc, p);
        }
    }
    if let Ok(truncated) = diff.get_array("truncatedArrays") {
        for t in truncated {
            let t = t
                .as_document()
                .ok_or_else(|| bad("truncatedArrays holds a non-document"))?;
            let field = t
                .get_str("field")
                .map_err(|_| bad("truncatedArrays.field"))?;
            let size = t
                .get("newSize")
                .and_then(as_int)
                .ok_or_else(|| bad("truncatedArrays.newSize"))?;
            if let Some(Bson::Array(a)) = get_path_mut(doc, field) {
                a.truncate(size.max(0) as usize);
            }
        }
    }
    Ok(())
}

/// Old-style (`$v: 1`) oplog updates: only `$set` and `$unset` appear there.
fn apply_modifiers(doc: &mut Document, o: &Document) -> Result<()> {
    for (op, args) in o {
        let args = match args {
            Bson::Document(d) => d,
            _ if op == "$v" => continue,
            _ => return Err(bad(&format!("{op} with a non-document argument"))),
        };
        match op.as_str() {
            "$set" => {
                for (path, v) in args {
                    set_path(doc, path, v.clone())?;
                }
            }
            "$unset" => {
                for (path, _) in args {
                    unset_path(doc, path);
                }
            }
            other => return Err(bad(&format!("unsupported modifier {other}"))),
        }
    }
    Ok(())
}

/// Sets a dotted path, creating missing documents on the way; array elements by index
/// (past the end: padded with nulls, as the server does).
pub fn set_path(doc: &mut Document, path: &str, value: Bson) -> Result<()> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match rest {
        None => {
            doc.insert(head, value);
            Ok(())
        }
        Some(rest) => {
            if !doc.contains_key(head) {
                doc.insert(head, Document::new());
            }
            match doc.get_mut(head) {
                Some(child) => set_in(child, rest, value, path),
                None => Err(bad(&format!("cannot set {path}"))),
            }
        }
    }
}

fn set_in(node: &mut Bson, path: &str, value: Bson, full: &str) -> Result<()> {
    match node {
        Bson::Document(d) => set_path(d, path, value),
        Bson::Array(a) => {
            let (head, rest) = match path.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (path, None),
            };
            let i: usize = head
                .parse()
                .map_err(|_| bad(&format!("{full}: {head:?} is not an array index")))?;
            while a.len() < i {
                a.push(Bson::Null);
            }
            match rest {
                None if i == a.len() => a.push(value),
                None => a[i] = value,
                Some(rest) => {
                    if i == a.len() {
                        a.push(Bson::Document(Document::new()));
                    }
                    set_in(&mut a[i], rest, value, full)?;
                }
            }
            Ok(())
        }
        _ => Err(bad(&format!("{full}: a scalar is in the way"))),
    }
}

/// Removes a dotted path (an array element becomes null, as `$unset` does).
pub fn unset_path(doc: &mut Document, path: &str) {
    match path.rsplit_once('.') {
        None => {
            doc.remove(path);
        }
        Some((parent, last)) => match get_path_mut(doc, parent) {
            Some(Bson::Document(d)) => {
                d.remove(last);
            }
            Some(Bson::Array(a)) => {
                if let Some(e) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *e = Bson::Null;
                }
            }
            _ => {}
        },
    }
}

fn get_path_mut<'a>(doc: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    let mut parts = path.split('.');
    let mut cur = doc.get_mut(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Bson::Document(d) => d.get_mut(p)?,
            Bson::Array(a) => a.get_mut(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// mongod's document diff: walk the pre-image in order — deleted fields dropped, updated
/// ones replaced in place, sub-diffs applied in place, inserted ones skipped — then append
/// updated fields the pre-image lacked and the inserted fields, in diff order.
fn apply_doc_diff(doc: &mut Document, diff: &Document) -> Result<()> {
    let section = |k: &str| diff.get_document(k).ok();
    let (del, upd, ins) = (section("d"), section("u"), section("i"));
    let mut out = Document::new();
    for (k, v) in doc.iter() {
        if del.is_some_and(|d| d.contains_key(k)) || ins.is_some_and(|d| d.contains_key(k)) {
            continue;
        }
        if let Some(nv) = upd.and_then(|u| u.get(k)) {
            out.insert(k.clone(), nv.clone());
        } else if let Some(Bson::Document(sub)) = diff.get(format!("s{k}")) {
            let mut v = v.clone();
            apply_sub_diff(&mut v, sub)?;
            out.insert(k.clone(), v);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(u) = upd {
        for (k, v) in u {
            if !doc.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(i) = ins {
        for (k, v) in i {
            out.insert(k.clone(), v.clone());
        }
    }
    *doc = out;
    Ok(())
}

fn apply_sub_diff(v: &mut Bson, diff: &Document) -> Result<()> {
    let is_array_diff = diff.get_bool("a").unwrap_or(false);
    match v {
        Bson::Document(d) if !is_array_diff => apply_doc_diff(d, diff),
        Bson::Array(a) if is_array_diff => {
            if let Some(n) = diff.get("l").and_then(as_int) {
                a.resize(n.max(0) as usize, Bson::Null);
            }
            for (k, val) in diff {
                let (tag, idx) = k.split_at(1);
                let Ok(i) = idx.parse::<usize>() else {
                    continue;
                };
                while a.len() <= i {
                    a.push(Bson::Null);
                }
                match (tag, val) {
                    ("u", _) => a[i] = val.clone(),
                    ("s", Bson::Document(sub)) => apply_sub_diff(&mut a[i], sub)?,
                    _ => return Err(bad(&format!("array diff entry {k:?}"))),
                }
            }
            Ok(())
        }
        _ => Err(bad(
            "a sub-diff does not match the type of the field it changes",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn bytes(d: &Document) -> Vec<u8> {
        let mut v = Vec::new();
        d.to_writer(&mut v).unwrap();
        v
    }

    #[test]
    fn description_form_sets_unsets_and_truncates_in_server_order() {
        let mut d = doc! {"_id": 1, "a": 1, "arr": [1, 2, 3], "sub": {"x": 1}};
        let o = doc! {"$v": 2, "diff": {"updatedFields": {"b": 2, "sub.y": 2, "arr.1": 9},
        "removedFields": ["a"], "truncatedArrays": []}};
        apply_update(&mut d, &o).unwrap();
        let want = doc! {"_id": 1, "arr": [1, 9, 3], "sub": {"x": 1, "y": 2}, "b": 2};
        assert_eq!(bytes(&d), bytes(&want));
        let o = doc! {"$v": 2, "diff": {"updatedFields": {"arr.4": 5},
        "truncatedArrays": [{"field": "arr", "newSize": 1}]}};
        apply_update(&mut d, &o).unwrap();
        assert_eq!(d.get_array("arr").unwrap(), &vec![Bson::Int32(1)]);
    }

    #[test]
    fn mongod_diff_form_keeps_positions_and_appends_new_fields() {
        let mut d = doc! {"_id": 1, "a": 1, "b": {"c": 1, "d": [1, 2, 3]}, "e": 5};
        let o = doc! {"$v": 2, "diff": {
            "d": {"a": false}, "u": {"e": 6, "new": 1}, "i": {"z": true},
            "sb": {"u": {"c": 2}, "sd": {"a": true, "l": 2, "u1": 7}}
        }};
        apply_update(&mut d, &o).unwrap();
        let want = doc! {"_id": 1, "b": {"c": 2, "d": [1, 7]}, "e": 6, "new": 1, "z": true};
        assert_eq!(bytes(&d), bytes(&want));
    }

    #[test]
    fn replacement_and_old_modifiers() {
        let mut d = doc! {"_id": 3, "a": 1};
        apply_update(&mut d, &doc! {"z": 1}).unwrap();
        assert_eq!(bytes(&d), bytes(&doc! {"_id": 3, "z": 1}));
        apply_update(&mut d, &doc! {"$set": {"q.r": 1}, "$unset": {"z": 1}}).unwrap();
        assert_eq!(bytes(&d), bytes(&doc! {"_id": 3, "q": {"r": 1}}));
        assert!(apply_update(&mut d, &doc! {"$inc": {"q.r": 1}}).is_err());
        assert!(apply_update(&mut d, &doc! {"$set": {"q.r.s": 1}}).is_err());
    }
}
