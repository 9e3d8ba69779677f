//! Globs over names stored as bytes.
//!
//! globset matches bytes: its `?` is one byte and its classes are sets of bytes, so
//! `caf?` would miss `café` (two bytes for `é`) and `[éè]` would match half a character.
//! A name that is UTF-8 (nearly all) is therefore matched by the same pattern compiled in
//! Unicode mode, where `?`, `*` and classes count characters; a name that is not UTF-8
//! keeps byte matching, so `x?` still finds `x\xff`.

use globset::{GlobBuilder, GlobMatcher};

/// A compiled glob.
#[derive(Clone, Debug)]
pub struct Glob {
    bytes: GlobMatcher,
    /// The same pattern for UTF-8 names (`None`: it did not compile in Unicode mode, and
    /// byte matching is used for every name).
    text: Option<regex::bytes::Regex>,
}

impl Glob {
    /// Compiles `pattern`: `*`, `?`, `[..]`, `{a,b}`, `**`, `\` escapes. With
    /// `literal_separator`, `*` and `?` do not match `/`.
    pub fn new(pattern: &str, literal_separator: bool) -> Result<Self, globset::Error> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(literal_separator)
            .backslash_escape(true)
            .build()?;
        let text = unicode_regex(glob.regex()).and_then(|re| {
            regex::bytes::RegexBuilder::new(&re)
                .unicode(true)
                .dot_matches_new_line(true)
                .size_limit(10 << 20)
                .build()
                .ok()
        });
        Ok(Glob {
            bytes: glob.compile_matcher(),
            text,
        })
    }

    /// Whether `candidate` (a name or a path) matches.
    pub fn is_match(&self, candidate: impl AsRef<[u8]>) -> bool {
        let c = candidate.as_ref();
        match &self.text {
            Some(re) if std::str::from_utf8(c).is_ok() => re.is_match(c),
            _ => {
                use std::os::unix::ffi::OsStrExt;
                self.bytes
                    .is_match(std::path::Path::new(std::ffi::OsStr::from_bytes(c)))
            }
        }
    }
}

/// globset's regex for a glob (byte mode: `(?-u)` first, every byte of a non-ASCII
/// character escaped as `\xhh`, other escapes a `\` before an ASCII character) turned
/// into the same regex in Unicode mode: the escaped bytes become the characters they
/// spell. `None` if it is not of that form.
fn unicode_regex(bytes_re: &str) -> Option<String> {
    let body = bytes_re.strip_prefix("(?-u)")?;
    let mut out = String::with_capacity(body.len());
    let mut run: Vec<u8> = Vec::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut run, &mut out)?;
            out.push(c);
            continue;
        }
        let next = chars.next()?;
        if next == 'x' {
            let hex: String = chars.by_ref().take(2).collect();
            run.push(u8::from_str_radix(&hex, 16).ok()?);
        } else {
            flush(&mut run, &mut out)?;
            out.push('\\');
            out.push(next);
        }
    }
    flush(&mut run, &mut out)?;
    return Some(out);

    fn flush(run: &mut Vec<u8>, out: &mut String) -> Option<()> {
        if !run.is_empty() {
            out.push_str(std::str::from_utf8(run).ok()?);
            run.clear();
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, sep: bool, name: &[u8]) -> bool {
        Glob::new(pattern, sep).expect("pattern").is_match(name)
    }

    #[test]
    fn question_marks_and_classes_count_characters_in_utf8_names() {
        assert!(m("caf?", true, "café".as_bytes()));
        assert!(!m("caf??", true, "café".as_bytes()));
        assert!(m("[éè]t[é]", true, "été".as_bytes()));
        assert!(!m("[éè]", true, "e".as_bytes()));
        assert!(m("[à-ü]?", true, "ñx".as_bytes()));
        assert!(m("[!é]*", true, "xé".as_bytes()));
        assert!(!m("[!é]*", true, "éx".as_bytes()));
        assert!(m("*.pdf", true, "Документ.pdf".as_bytes()));
        assert!(m("Д?к*", true, "Документ".as_bytes()));
        assert!(m("{a,é}?", true, "éé".as_bytes()));
        assert!(m("🙂?", true, "🙂🙂".as_bytes()));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_matched_one_byte_at_a_time() {
        assert!(m("x?", true, b"x\xff"));
        assert!(!m("x?", true, b"x\xff\xfe"));
        assert!(m("x*", true, b"x\xff\xfe"));
        assert!(m("caf?", true, b"caf\xc3"));
        // Not UTF-8 as a whole: literals still match their bytes, `?` one byte.
        assert!(m("é?", true, b"\xc3\xa9\xff"));
        assert!(m("???", true, b"\xc3\xa9\xff"));
        assert!(!m("??", true, b"\xc3\xa9\xff"));
    }

    #[test]
    fn separators_escapes_and_recursion_as_before() {
        assert!(!m("a?b", true, b"a/b"));
        assert!(m("a?b", false, b"a/b"));
        assert!(m("/home/*/docs", true, "/home/zoë/docs".as_bytes()));
        assert!(!m("/home/*/docs", true, b"/home/a/b/docs"));
        assert!(m("/home/**/docs", true, "/home/ä/b/docs".as_bytes()));
        assert!(m("**/x", true, b"a/b/x"));
        assert!(m("a\\*", true, b"a*"));
        assert!(!m("a\\*", true, b"ab"));
        assert!(m("\\\\x41", true, b"\\x41"));
        assert!(m("line?break", true, b"line\nbreak"));
        assert!(m("*", true, "new\nline é".as_bytes()));
        assert!(m("app.*", false, "app.sessions.2024".as_bytes()));
    }

    #[test]
    fn the_unicode_form_is_made_for_every_shape() {
        for p in [
            "caf?",
            "[é-ü]",
            "[!/]",
            "{a,b,é}",
            "**",
            "a/**",
            "**/b",
            "a/**/b",
            "\\[x]",
            "[[:alpha:]]",
        ] {
            let g = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .expect("glob");
            assert!(unicode_regex(g.regex()).is_some(), "{p}: {}", g.regex());
            assert!(Glob::new(p, true).expect("glob").text.is_some(), "{p}");
        }
    }
}
