//! Namespaces (`db.coll`): splitting, `--ns` globs and `--ns-rename` rules.
//!
//! A rename rule is `FROM:TO`, each side a namespace with at most one `*`. Collection
//! names may contain `:` (and `\`), so a rule's sides are separated by the one *unescaped*
//! colon: write `\:` for a colon and `\\` for a backslash inside a name
//! (`app.sessions\:2024:archive.sessions\:2024`). A rule with no unescaped colon or more
//! than one is refused, never guessed. `--ns-from`/`--ns-to` pairs need no escaping.

use crate::error::{Error, Result};

/// Splits "db.coll" (collection names may contain dots; database names may not).
pub fn split_ns(ns: &str) -> Result<(&str, &str)> {
    ns.split_once('.')
        .filter(|(d, c)| !d.is_empty() && !c.is_empty())
        .ok_or_else(|| Error::Invalid(format!("{ns:?} is not a namespace: expected db.collection")))
}

/// Compiles `--ns` globs ("app.*"; `*` also matches dots).
pub fn ns_matchers(globs: &[String]) -> Result<Vec<crate::glob::Glob>> {
    globs
        .iter()
        .map(|g| {
            crate::glob::Glob::new(g, false).map_err(|e| Error::Invalid(format!("--ns {g:?}: {e}")))
        })
        .collect()
}

/// One rename rule. Requests carry it as `{"from": …, "to": …}` (no escaping needed).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RulePair", into = "RulePair")]
pub struct Rule {
    /// As the user wrote it, for messages.
    pub text: String,
    from: String,
    to: String,
}

/// A rule as requests spell it.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RulePair {
    from: String,
    to: String,
}

impl TryFrom<RulePair> for Rule {
    type Error = Error;
    fn try_from(p: RulePair) -> Result<Rule> {
        Rule::pair(&p.from, &p.to)
    }
}

impl From<Rule> for RulePair {
    fn from(r: Rule) -> Self {
        RulePair {
            from: r.from,
            to: r.to,
        }
    }
}

/// Splits `FROM:TO` at its one unescaped colon, unescaping `\:` and `\\`.
fn split_rule(text: &str) -> Result<(String, String)> {
    let mut sides = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ (':' | '\\')) => sides.last_mut().map_or((), |s| s.push(e)),
                _ => {
                    return Err(Error::Invalid(format!(
                        "--ns-rename {text:?}: '\\' must be followed by ':' or '\\'"
                    )))
                }
            },
            ':' => sides.push(String::new()),
            c => sides.last_mut().map_or((), |s| s.push(c)),
        }
    }
    match <[String; 2]>::try_from(sides) {
        Ok([from, to]) if !from.is_empty() && !to.is_empty() => Ok((from, to)),
        _ => Err(Error::Invalid(format!(
            "--ns-rename {text:?}: expected FROM:TO with exactly one ':' between them; write \
             a ':' inside a name as '\\:' (or use --ns-from/--ns-to)"
        ))),
    }
}

impl Rule {
    /// Parses `FROM:TO` (see the module documentation).
    pub fn parse(text: &str) -> Result<Rule> {
        let (from, to) = split_rule(text)?;
        Self::new(text, from, to)
    }

    /// A rule from an `--ns-from`/`--ns-to` pair.
    pub fn pair(from: &str, to: &str) -> Result<Rule> {
        Self::new(&format!("{from} -> {to}"), from.into(), to.into())
    }

    fn new(text: &str, from: String, to: String) -> Result<Rule> {
        if from.is_empty() || to.is_empty() {
            return Err(Error::Invalid(format!(
                "rename rule {text:?}: both names must be given"
            )));
        }
        if from.matches('*').count() > 1 || to.matches('*').count() > 1 {
            return Err(Error::Invalid(format!(
                "--ns-rename {text:?}: at most one '*' on each side"
            )));
        }
        if from.contains('*') != to.contains('*') {
            return Err(Error::Invalid(format!(
                "--ns-rename {text:?}: use a '*' on both sides or on neither"
            )));
        }
        Ok(Rule {
            text: text.to_string(),
            from,
            to,
        })
    }

    /// The database this rule takes whole (`DB.*`), if it is such a rule.
    pub fn whole_database(&self) -> Option<&str> {
        self.from.strip_suffix(".*").filter(|db| !db.contains('*'))
    }

    /// Where this rule sends `ns`, if it matches.
    pub fn apply(&self, ns: &str) -> Option<String> {
        match (self.from.split_once('*'), self.to.split_once('*')) {
            (Some((fp, fs)), Some((tp, ts))) => {
                (ns.len() >= fp.len() + fs.len() && ns.starts_with(fp) && ns.ends_with(fs))
                    .then(|| format!("{tp}{}{ts}", &ns[fp.len()..ns.len() - fs.len()]))
            }
            _ => (ns == self.from).then(|| self.to.clone()),
        }
    }
}

/// The rename rules of a restore, first match wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Renames(pub Vec<Rule>);

impl Renames {
    /// Parses `--ns-rename` rules and `--ns-from`/`--ns-to` pairs (equal counts).
    pub fn parse(rules: &[String], from: &[String], to: &[String]) -> Result<Renames> {
        if from.len() != to.len() {
            return Err(Error::Invalid(format!(
                "--ns-from and --ns-to come in pairs ({} and {} given)",
                from.len(),
                to.len()
            )));
        }
        let mut out: Vec<Rule> = rules
            .iter()
            .map(|r| Rule::parse(r))
            .collect::<Result<_>>()?;
        for (f, t) in from.iter().zip(to) {
            out.push(Rule::pair(f, t)?);
        }
        Ok(Renames(out))
    }

    /// Whether there are any rules.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The target of `ns`, and which rule sent it there (None: kept as it is).
    pub fn apply(&self, ns: &str) -> (String, Option<usize>) {
        for (i, r) in self.0.iter().enumerate() {
            if let Some(t) = r.apply(ns) {
                return (t, Some(i));
            }
        }
        (ns.to_string(), None)
    }

    /// The target of `ns`.
    pub fn target(&self, ns: &str) -> String {
        self.apply(ns).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_split_at_the_first_dot() {
        assert!(split_ns("app.users.v2").unwrap() == ("app", "users.v2"));
        assert!(split_ns("app").is_err());
    }

    #[test]
    fn renames_with_and_without_wildcards() {
        let r =
            Renames::parse(&["app.*:app_restored.*".into(), "x.a:y.b".into()], &[], &[]).unwrap();
        assert_eq!(r.target("app.users"), "app_restored.users");
        assert_eq!(r.target("x.a"), "y.b");
        assert_eq!(r.apply("other.c"), ("other.c".to_string(), None));
        assert!(Rule::parse("a.*:b").is_err());
    }

    #[test]
    fn colons_in_names_are_never_guessed() {
        // The rule that once turned into an in-place drop of the live collection.
        assert!(Rule::parse("app.sessions:2024:app_old.sessions:2024").is_err());
        let r = Rule::parse("app.sessions\\:2024:app_old.sessions\\:2024").unwrap();
        assert_eq!(
            r.apply("app.sessions:2024").as_deref(),
            Some("app_old.sessions:2024")
        );
        let p = Rule::pair("app.sessions:2024", "old.s:1").unwrap();
        assert_eq!(p.apply("app.sessions:2024").as_deref(), Some("old.s:1"));
        assert!(Rule::parse("a.b\\c:d.e").is_err());
        assert!(Rule::parse("a.b\\\\c:d.e").is_ok());
        assert!(Rule::parse(":d.e").is_err());
        assert!(Renames::parse(&[], &["a.b".into()], &[]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn escaped_names_round_trip(a in "[a-z:\\\\.]{1,12}", b in "[a-z:\\\\.]{1,12}") {
            let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
            let r = Rule::parse(&format!("{}:{}", esc(&a), esc(&b))).unwrap();
            proptest::prop_assert_eq!(r.apply(&a), Some(b.clone()));
        }
    }
}
