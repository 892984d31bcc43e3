//! JSON read once into a flat, borrowed "tape" of items: the whole forward request body, whose
//! envelope the request reader walks, whose payloads and metas the compiled JSON Schema
//! validators read in place (jsonschema's custom-representation API), which redaction edits,
//! and which [`Tape::write_json_at`] writes back when redaction changed a payload.
//!
//! Why not `serde_json::Value`: a `Value` allocates every string, every key and every object's
//! B-tree, and frees them all again — a large share of the forward hot path. A tape is one
//! vector; strings borrow from the request body unless they hold escapes.
//!
//! Why its own reader ([`Tape::load`]) rather than serde_json's visitor ([`Tape::parse`], kept
//! as the reference): serde's machinery per value, and a second pass over every payload, were
//! a large share of the hot path. The reader only does structure, plain strings and integers; what
//! needs decoding (escapes, fractions, exponents, long integers) goes to serde_json, so it
//! accepts and records exactly what serde_json does — a differential test here and the
//! `tape_load` fuzz target check both ways. It keeps each value's place in the text, so a
//! payload can be forwarded as the client's own text. (The alternatives measured, and why they
//! lost, are in the README's benchmark section.)
//!
//! Payloads whose objects repeat a member name are refused: validators and consumers could
//! disagree on which of the two values counts (serde_json keeps the last, others the first).

//!
//! In parts by job: this module holds the data ([`Item`], [`Tape`]) and its reading accessors;
//! `reader` reads JSON text into a tape; `pointer` finds and edits values by JSON pointer
//! (redaction); `schema` lets the compiled validators read a tape in place; `oracle` (tests and
//! fuzzing only) fills a tape from serde_json's own events, the reference the reader is held to.

#[cfg(any(test, feature = "oracle"))]
mod oracle;
mod pointer;
mod reader;
mod schema;

use std::borrow::Cow;
use std::fmt::Write as _;

use eventfabric_core::write_json_str;
use jsonschema::json::Node as _;
use serde_json::Number;

use reader::Loader;

pub use pointer::Pointer;
pub use schema::{Elements, Members, TapeArray, TapeJson, TapeNode, TapeObject};

/// One item of a tape. A container's items follow it; `end` is the index one past its last.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'s> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'s, str>),
    /// An object member's name; the member's value follows it.
    Key(Cow<'s, str>),
    Array {
        len: u32,
        end: u32,
    },
    Object {
        len: u32,
        end: u32,
    },
    /// A member (its name and value) or element removed by redaction: skip to `end`.
    Removed {
        end: u32,
    },
}

/// Objects with more members than this are checked for repeated names with a hash set.
const LINEAR_DUPLICATE_CHECK: usize = 16;

/// Containers may nest this deep: serde_json's own limit (its deserializer refuses the 128th
/// level), which keeps the recursive readers of a tape (validation, encoding) far from the
/// stack's end.
const MAX_DEPTH: usize = 127;

/// A parsed payload. Index 0 is the root value.
#[derive(Debug, Default)]
pub struct Tape<'s> {
    items: Vec<Item<'s>>,
    /// Where each item is in the text, as byte offsets (filled by [`Tape::load`] only).
    spans: Vec<(u32, u32)>,
    text: &'s str,
    /// Values [`Tape::load_with_repeats`] kept as placeholders because they cannot be decoded
    /// (item index, why): see [`Tape::problem_in`].
    problems: Vec<(usize, String)>,
    /// [`Tape::load`]'s open containers (item index, members or elements so far, whether an
    /// object), kept to reuse the allocation.
    open: Vec<(usize, u32, bool)>,
}

impl<'s> Tape<'s> {
    pub fn with_capacity(items: usize) -> Self {
        Self {
            items: Vec::with_capacity(items),
            spans: Vec::with_capacity(items),
            problems: Vec::new(),
            text: "",
            open: Vec::with_capacity(8),
        }
    }

    /// Replaces the tape's contents with `text` read as one JSON value, refusing objects that
    /// repeat a member name; on error the tape is left empty.
    ///
    /// The hot path's reader. The items are exactly those [`Tape::parse`] records, and it
    /// refuses exactly what serde_json refuses (a test and the `tape_load` fuzz target hold
    /// both): structure, plain strings and integers of up to 18 digits are read here, anything
    /// that needs decoding (escapes, fractions, exponents, long integers) is handed to
    /// serde_json. It also records where each item is in `text` ([`Tape::text_of`]).
    pub fn load(&mut self, text: &'s str) -> Result<(), String> {
        self.read(text, false)
    }

    /// [`Tape::load`] for a request body, where one event's bad value must not fail the rest:
    /// objects that repeat a member name are kept, and a well-formed value that cannot be
    /// decoded (an escape naming a lone surrogate, a number out of range) is kept as a
    /// placeholder with its problem ([`Tape::problem_in`]). Text that is not JSON still fails.
    pub fn load_with_repeats(&mut self, text: &'s str) -> Result<(), String> {
        self.read(text, true)
    }

    fn read(&mut self, text: &'s str, repeats: bool) -> Result<(), String> {
        if u32::try_from(text.len()).is_err() {
            return Err("text too large".to_owned());
        }
        self.items.clear();
        self.spans.clear();
        self.problems.clear();
        self.open.clear();
        self.text = text;
        let loaded = Loader {
            text,
            at: 0,
            items: &mut self.items,
            spans: &mut self.spans,
            problems: &mut self.problems,
            open: &mut self.open,
            repeats,
        }
        .run();
        if loaded.is_err() {
            self.items.clear();
            self.spans.clear();
        }
        loaded
    }

    /// The JSON text of the value at `index`, as it was in the text [`Tape::load`] read.
    pub fn text_of(&self, index: usize) -> Option<&'s str> {
        let &(start, end) = self.spans.get(index)?;
        self.text.get(start as usize..end as usize)
    }

    /// The item at `index`.
    pub fn item(&self, index: usize) -> &Item<'s> {
        &self.items[index]
    }

    /// The members of the object at `index`: each name, and its value's index.
    pub fn members(&self, index: usize) -> impl Iterator<Item = (&str, usize)> {
        self.node(index)
            .members_at()
            .map(|(key, value)| match &self.items[key] {
                Item::Key(name) => (name.as_ref(), value),
                _ => unreachable!("members start with their name"),
            })
    }

    /// The indices of the elements of the array at `index`.
    pub fn elements(&self, index: usize) -> impl Iterator<Item = usize> {
        self.node(index).elements_at()
    }

    pub fn items(&self) -> &[Item<'s>] {
        &self.items
    }

    /// The root value, for validation. Panics on an empty tape (nothing parsed).
    pub fn root(&self) -> TapeNode<'_> {
        assert!(!self.items.is_empty(), "tape holds no value");
        TapeNode {
            items: &self.items,
            index: 0,
        }
    }

    /// The value at `index`.
    pub fn node(&self, index: usize) -> TapeNode<'_> {
        assert!(index < self.items.len(), "no item {index} in the tape");
        TapeNode {
            items: &self.items,
            index,
        }
    }

    /// The string member `name` of the object at `index`, if there is one.
    pub fn string_member(&self, index: usize, name: &str) -> Option<&str> {
        let object = self.node(index).as_object()?;
        match object.get_str(name)?.item() {
            Item::String(s) => Some(s.as_ref()),
            _ => None,
        }
    }

    /// Why the value at `index`, or one inside it, could not be decoded, if so.
    pub fn problem_in(&self, index: usize) -> Option<&str> {
        let end = end_of(&self.items, index) as usize;
        self.problems
            .iter()
            .find(|(at, _)| (index..end).contains(at))
            .map(|(_, problem)| problem.as_str())
    }

    /// Refuses a value (at `index`) with an object that repeats a member name, which
    /// [`Tape::load_with_repeats`] kept.
    pub fn refuse_repeats(&self, index: usize) -> Result<(), String> {
        let end = end_of(&self.items, index) as usize;
        for at in index..end {
            if let Item::Object { len, .. } = self.items[at] {
                if let Some(name) = repeated_name(&self.items, at, len as usize) {
                    return Err(format!(
                        "member '{name}' appears more than once in one object"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes the value at `at` as [`Tape::write_json`] writes the root.
    pub fn write_json_at(&self, at: usize, out: &mut String) {
        write_item(&self.items, at, out);
    }
}

/// Reading helpers only the tests use.
#[cfg(test)]
impl<'s> Tape<'s> {
    /// The string member `name` of the root object, if there is one.
    pub fn root_string(&self, name: &str) -> Option<&str> {
        self.string_member(0, name)
    }

    /// The value at `pointer`, if present.
    pub fn pointer(&self, pointer: &Pointer) -> Option<TapeNode<'_>> {
        self.pointer_at(0, pointer)
    }

    /// Replaces the scalar at `pointer` with a string; whether there was one. Containers are
    /// left alone (`Err`): nothing in the registry hashes one, and their items would be orphaned.
    pub fn replace_with_string(
        &mut self,
        pointer: &Pointer,
        replace: impl FnOnce(TapeNode<'_>) -> String,
    ) -> Result<bool, &'static str> {
        self.replace_with_string_at(0, pointer, replace)
    }

    /// Removes the member or element at `pointer`; whether there was one. The root stays.
    pub fn remove(&mut self, pointer: &Pointer) -> bool {
        self.remove_at(0, pointer)
    }

    /// Writes the root value as compact JSON, members in their original order, as serde_json
    /// would write the same value.
    pub fn write_json(&self, out: &mut String) {
        self.write_json_at(0, out);
    }
}

fn end_of(items: &[Item<'_>], index: usize) -> u32 {
    match items[index] {
        Item::Array { end, .. } | Item::Object { end, .. } | Item::Removed { end } => end,
        _ => index as u32 + 1,
    }
}

fn write_item(items: &[Item<'_>], index: usize, out: &mut String) {
    let node = TapeNode { items, index };
    match &items[index] {
        Item::Null => out.push_str("null"),
        Item::Bool(true) => out.push_str("true"),
        Item::Bool(false) => out.push_str("false"),
        // `Number`'s Display is the text serde_json writes for it.
        Item::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Item::String(s) | Item::Key(s) => write_json_str(out, s),
        Item::Object { .. } => {
            out.push('{');
            for (i, (key, value)) in node.members_at().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_item(items, key, out);
                out.push(':');
                write_item(items, value, out);
            }
            out.push('}');
        }
        Item::Array { .. } => {
            out.push('[');
            for (i, element) in node.elements_at().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_item(items, element, out);
            }
            out.push(']');
        }
        Item::Removed { .. } => unreachable!("removed items are skipped by their container"),
    }
}

/// A member name repeated in the object at `start`, if any.
fn repeated_name<'a>(items: &'a [Item<'_>], start: usize, len: usize) -> Option<&'a str> {
    let node = TapeNode {
        items,
        index: start,
    };
    let name = |key: usize| match &items[key] {
        Item::Key(k) => k.as_ref(),
        _ => unreachable!("members start with their name"),
    };
    if len <= LINEAR_DUPLICATE_CHECK {
        let mut keys = [""; LINEAR_DUPLICATE_CHECK];
        for (i, (key, _)) in node.members_at().enumerate() {
            let key = name(key);
            if keys[..i].contains(&key) {
                return Some(key);
            }
            keys[i] = key;
        }
        None
    } else {
        let mut seen = std::collections::HashSet::with_capacity(len);
        node.members_at()
            .map(|(key, _)| name(key))
            .find(|key| !seen.insert(*key))
    }
}

#[cfg(test)]
mod tests {
    use super::reader::{number_grammar, well_formed_escapes};
    use super::*;
    use jsonschema::json::{Array as _, Object as _};
    use serde_json::{Map, Value, json};

    fn p(text: &str) -> Pointer {
        Pointer::parse(text).unwrap()
    }

    fn parsed(text: &str) -> Tape<'_> {
        let mut tape = Tape::default();
        tape.parse(text).unwrap();
        tape
    }

    #[test]
    fn satisfies_the_validators_representation_contract() {
        let text = jsonschema::json::conformance::document().to_string();
        let tape = parsed(&text);
        jsonschema::json::conformance::assert_conformance::<TapeJson>(&tape.root());
    }

    #[test]
    fn round_trips_values_including_escapes_and_nesting() {
        let value = json!({"a": "x\"y\\z\u{1}", "b": [1, -2, 2.5, 1e300, true, null, {}, []],
                           "c": {"d": {"e": "é🦀"}}, "f": 18446744073709551615u64});
        let text = value.to_string();
        let tape = parsed(&text);
        assert_eq!(tape.root().to_value().into_owned(), value);
        let mut out = String::new();
        tape.write_json(&mut out);
        assert_eq!(out, value.to_string(), "as serde_json writes it");
        // Members keep the client's order (a `Value` would sort them).
        let ordered = parsed(r#"{"z": 1, "a": 2}"#);
        let mut out = String::new();
        ordered.write_json(&mut out);
        assert_eq!(out, r#"{"z":1,"a":2}"#);
    }

    /// `load` (the hot path's reader) records what `parse` (serde_json's deserializer)
    /// records, and refuses what it refuses; the `tape_load` fuzz target checks the same on
    /// arbitrary input.
    #[test]
    fn load_reads_and_refuses_what_serde_json_does() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let valid = [
            r#"{"a": 1}"#.to_owned(),
            " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] } \n".to_owned(),
            r#"[0, -0, 7, -7, 123456789012345678, 1234567890123456789, 18446744073709551615,
                18446744073709551616, -9223372036854775808, -9223372036854775809,
                0.5, -0.0, 1e2, 1E-2, 2.5e+3, 1e308]"#
                .to_owned(),
            r#"["", "plain", "é🦀", "tab\tand \"quote\"", "\\", "\u00e9\ud83e\udd80", "\/"]"#
                .to_owned(),
            r#"["a string longer than eight bytes with \"escapes\" after the first chunk"]"#
                .to_owned(),
            r#"{"esc\"aped": {"\u0061": true, "b": false, "n": null}}"#.to_owned(),
            r#""top-level string""#.to_owned(),
            "42".to_owned(),
            "null".to_owned(),
            deep(127),
            r#"[{"x": [{"y": [[], {}]}]}, {"x": 1}]"#.to_owned(),
        ];
        let invalid = [
            "",
            " ",
            "{",
            "[1,]",
            r#"{"a": 1,}"#,
            "[1 2]",
            r#"{"a" 1}"#,
            r#"{1: 2}"#,
            "[1}",
            r#"{"a": 1]"#,
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "1-2",
            "nul",
            "nulls",
            "tru",
            "[true false]",
            "\"unterminated",
            "\"tab\there\"",
            "\"bad \\x escape\"",
            r#"["\ud800"]"#,
            "[1e400]",
            "1 2",
            "\u{feff}1",
            "[]]",
            "'single'",
        ];
        let too_deep = deep(128);
        let repeated = [r#"{"a": 1, "a": 2}"#, r#"{"a": 1, "\u0061": 2}"#];
        let texts = valid
            .iter()
            .map(String::as_str)
            .chain(invalid)
            .chain(repeated)
            .chain([too_deep.as_str()]);
        for text in texts {
            let (mut loaded, mut parsed) = (Tape::default(), Tape::default());
            let by_load = loaded.load(text);
            let by_parse = parsed.parse(text);
            assert_eq!(
                by_load.is_ok(),
                by_parse.is_ok(),
                "{text}: {by_load:?} {by_parse:?}"
            );
            assert_eq!(loaded.items(), parsed.items(), "{text}");
        }
        for text in &valid {
            assert!(Tape::default().load(text).is_ok(), "{text}");
        }
        let mut tape = Tape::default();
        assert_eq!(
            tape.load(&too_deep).unwrap_err(),
            "nested more than 127 levels deep"
        );
        assert_eq!(
            tape.load(r#"{"x": 1, "x": 2}"#).unwrap_err(),
            "member 'x' appears more than once in one object"
        );
        assert!(tape.items().is_empty(), "left empty on error");
        assert!(tape.load_with_repeats(r#"{"x": 1, "x": 2}"#).is_ok());
    }

    #[test]
    fn the_body_reader_keeps_undecodable_values_as_problems() {
        let text = r#"[{"n": 1e400}, "\ud800", "fine", {"k\udc00": 1}]"#;
        let mut tape = Tape::default();
        assert!(tape.load(text).is_err(), "the strict reader refuses them");
        tape.load_with_repeats(text).unwrap();
        let elements: Vec<usize> = tape.elements(0).collect();
        assert!(
            tape.problem_in(elements[0])
                .unwrap()
                .contains("number out of range")
        );
        assert!(
            tape.problem_in(elements[1])
                .unwrap()
                .starts_with("string at byte")
        );
        assert_eq!(tape.problem_in(elements[2]), None);
        assert!(tape.problem_in(elements[3]).is_some(), "a member name too");
        assert!(tape.problem_in(0).is_some(), "and whatever holds them");
        // Not JSON is not a value's problem.
        for bad in [r#"["\x"]"#, r#"["\u12"]"#, "[01]", "[1.]", "[-]", "[1e]"] {
            assert!(Tape::default().load_with_repeats(bad).is_err(), "{bad}");
        }
        for (text, ok) in [("0", true), ("-0", true), ("1.5e+3", true), ("12E7", true)] {
            assert_eq!(number_grammar(text), ok, "{text}");
        }
        for text in ["01", "1.", "-", ".5", "1e", "1e+", "+1", "1.5.5", ""] {
            assert!(!number_grammar(text), "{text}");
        }
        assert!(well_formed_escapes(br#"a\u00e9\n\"\\\/\b\f\r\t\uD83E"#));
        assert!(!well_formed_escapes(br#"\x"#));
        assert!(!well_formed_escapes(br#"\u12"#));
        assert!(!well_formed_escapes(br#"ab\"#));
    }

    #[test]
    fn knows_where_each_value_is_and_edits_values_in_place() {
        let text = r#" {"a": [1, {"b": "x"}], "c": {"d": 1, "d": 2}, "e": "\n"} "#;
        let mut tape = Tape::default();
        tape.load_with_repeats(text).unwrap();
        let texts: Vec<_> = tape
            .members(0)
            .map(|(name, at)| (name, tape.text_of(at).unwrap()))
            .collect();
        assert_eq!(
            texts,
            [
                ("a", r#"[1, {"b": "x"}]"#),
                ("c", r#"{"d": 1, "d": 2}"#),
                ("e", r#""\n""#)
            ]
        );
        assert_eq!(tape.text_of(0), Some(text.trim()));

        let mut out = String::new();
        tape.write_json_at(2, &mut out);
        assert_eq!(out, r#"[1,{"b":"x"}]"#);
        assert_eq!(
            tape.pointer_at(2, &p("/1/b")).unwrap().as_string().unwrap(),
            "x"
        );
        assert!(tape.remove_at(2, &p("/0")));
        assert_eq!(
            tape.replace_with_string_at(2, &p("/0/b"), |_| "h".to_owned()),
            Ok(true)
        );
        out.clear();
        tape.write_json_at(2, &mut out);
        assert_eq!(out, r#"[{"b":"h"}]"#, "edited where it is");
        let c = tape.members(0).nth(1).unwrap().1;
        assert_eq!(
            tape.refuse_repeats(c).unwrap_err(),
            "member 'd' appears more than once in one object"
        );
        assert_eq!(tape.refuse_repeats(2), Ok(()));
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let tape = parsed(r#"{"plain": "abc", "esc\"aped": "a\nb"}"#);
        let kinds: Vec<bool> = tape
            .items()
            .iter()
            .filter_map(|item| match item {
                Item::String(s) | Item::Key(s) => Some(matches!(s, Cow::Borrowed(_))),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, [true, true, false, false]);
    }

    #[test]
    fn refuses_repeated_member_names_at_any_size_and_depth() {
        let mut tape = Tape::default();
        let err = tape
            .parse(r#"{"a": 1, "b": {"x": 1, "x": 2}}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("member 'x' appears more than once"),
            "{err}"
        );
        assert!(tape.items().is_empty());
        let many: Map<String, Value> = (0..40).map(|i| (format!("k{i}"), json!(i))).collect();
        let text = Value::Object(many)
            .to_string()
            .replacen("\"k39\"", "\"k3\"", 1);
        let err = tape.parse(&text).unwrap_err();
        assert!(err.to_string().contains("member 'k3'"), "{err}");
        // Escaped and plain spellings of one name are the same name.
        assert!(tape.parse(r#"{"a": 1, "\u0061": 2}"#).is_err());
        assert!(tape.parse(r#"{"a": 1} x"#).is_err(), "trailing characters");
    }

    #[test]
    fn pointers_removal_and_replacement() {
        let mut tape = parsed(r#"{"a": {"b/c": [10, 20, 30]}, "d~e": "x", "tenantId": "t1"}"#);
        assert_eq!(
            tape.pointer(&p("/a/b~1c/1"))
                .unwrap()
                .to_value()
                .into_owned(),
            json!(20)
        );
        assert_eq!(
            tape.pointer(&p("/d~0e")).unwrap().to_value().into_owned(),
            json!("x")
        );
        assert!(tape.pointer(&p("/a/b~1c/3")).is_none());
        assert!(tape.pointer(&p("/d~0e/x")).is_none());
        assert_eq!(tape.root_string("tenantId"), Some("t1"));

        assert!(tape.remove(&p("/a/b~1c/1")));
        assert!(!tape.remove(&p("/a/b~1c/5")));
        assert_eq!(
            tape.replace_with_string(&p("/d~0e"), |n| format!("h:{:?}", n)),
            Ok(true)
        );
        assert_eq!(
            tape.replace_with_string(&p("/missing"), |_| unreachable!()),
            Ok(false)
        );
        assert!(
            tape.replace_with_string(&p("/a"), |_| unreachable!())
                .is_err()
        );
        assert!(tape.remove(&p("/tenantId")));
        assert_eq!(tape.root_string("tenantId"), None);
        let expected = json!({"a": {"b/c": [10, 30]}, "d~e": "h:\"x\""});
        assert_eq!(tape.root().to_value().into_owned(), expected);
        let root = tape.root();
        assert_eq!(root.as_object().unwrap().len(), 2);
        assert_eq!(
            tape.pointer(&p("/a/b~1c"))
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let mut out = String::new();
        tape.write_json(&mut out);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), expected);
    }

    #[test]
    fn validates_like_serde_json_values() {
        let schema = json!({
            "type": "object", "additionalProperties": false, "required": ["id", "n"],
            "properties": {
                "id": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
                "n": {"type": "integer", "minimum": 1},
                "kind": {"enum": ["a", "b", 3]},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "nested": {"type": "object", "properties": {"x": {"const": 1.0}}}
            }
        });
        let by_value = jsonschema::validator_for(&schema).unwrap();
        let by_tape = jsonschema::ValidationOptions::<_, TapeJson>::default()
            .build(&schema)
            .unwrap();
        let instances = [
            json!({"id": "abc", "n": 1}),
            json!({"id": "abcd", "n": 1}),
            json!({"id": "ab1", "n": 1}),
            json!({"id": "ab", "n": 0}),
            json!({"id": "ab", "n": 1.5}),
            json!({"id": "ab", "n": 2.0}),
            json!({"id": "ab"}),
            json!({"id": "ab", "n": 1, "extra": true}),
            json!({"id": "ab", "n": 1, "kind": "b"}),
            json!({"id": "ab", "n": 1, "kind": 3.0}),
            json!({"id": "ab", "n": 1, "kind": "c"}),
            json!({"id": "ab", "n": 1, "tags": ["x", "y"]}),
            json!({"id": "ab", "n": 1, "tags": ["x", "x"]}),
            json!({"id": "ab", "n": 1, "tags": ["x", 1]}),
            json!({"id": "ab", "n": 1, "nested": {"x": 1}}),
            json!({"id": "ab", "n": 1, "nested": {"x": 2}}),
            json!({"id": "é🦀a", "n": 1}),
            json!([]),
            json!("ab"),
        ];
        for instance in instances {
            let text = instance.to_string();
            let tape = parsed(&text);
            let expected = by_value
                .validate(&instance)
                .map_err(|e| (e.to_string(), e.instance_path().to_string()));
            let actual = by_tape
                .validate(tape.root())
                .map_err(|e| (e.to_string(), e.instance_path().to_string()));
            assert_eq!(actual, expected, "{text}");
        }
    }
}
