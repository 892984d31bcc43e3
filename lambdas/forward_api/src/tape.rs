//! JSON read once into a flat, borrowed "tape" of items: the whole forward request body, whose
//! envelope the request reader walks, whose payloads and metas the compiled JSON Schema
//! validators read in place (jsonschema's custom-representation API), which redaction edits,
//! and which [`Tape::write_json_at`] writes back when redaction changed a payload.
//!
//! Why not `serde_json::Value`: a `Value` allocates every string, every key and every object's
//! B-tree, and frees them all again — about a third of the forward hot path. A tape is one
//! vector; strings borrow from the request body unless they hold escapes.
//!
//! Why its own reader ([`Tape::load`]) rather than serde_json's visitor ([`Tape::parse`], kept
//! as the reference): serde's machinery per value, and a second pass over every payload, were
//! a third of the hot path. The reader only does structure, plain strings and integers; what
//! needs decoding (escapes, fractions, exponents, long integers) goes to serde_json, so it
//! accepts and records exactly what serde_json does — a differential test here and the
//! `tape_load` fuzz target check both ways. It keeps each value's place in the text, so a
//! payload can be forwarded as the client's own text. (Measured on the benchmark's 2 KB body:
//! serde_json skipping it 2.1 µs, simd-json's tape 2.6 µs, a jiter walk 6.1 µs; sonic-rs'
//! document 1.7 µs, but it keeps no source text, so every payload would be re-encoded, and it
//! overflowed the stack on deeply nested input.)
//!
//! Payloads whose objects repeat a member name are refused: validators and consumers could
//! disagree on which of the two values counts (serde_json keeps the last, others the first).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use eventfabric_core::write_json_str;
use jsonschema::json::{Array, Json, Node, NodeIdentity, Object};
use jsonschema::types::JsonType;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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

/// An RFC 6901 JSON pointer, split into unescaped tokens once (at start-up for the registry's
/// redaction hints), not at every use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    /// `None` unless `text` is empty (the whole document) or starts with `/`.
    pub fn parse(text: &str) -> Option<Self> {
        let tokens = match text {
            "" => Vec::new(),
            _ => text
                .strip_prefix('/')?
                .split('/')
                .map(|token| token.replace("~1", "/").replace("~0", "~"))
                .collect(),
        };
        Some(Self {
            text: text.to_owned(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
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

    /// Replaces the tape's contents with `text` parsed; on error the tape is left empty.
    pub fn parse(&mut self, text: &'s str) -> Result<(), serde_json::Error> {
        self.items.clear();
        self.spans.clear();
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = Builder {
            items: &mut self.items,
        }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
        if parsed.is_err() {
            self.items.clear();
        }
        parsed
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

    /// The string member `name` of the root object, if there is one.
    pub fn root_string(&self, name: &str) -> Option<&str> {
        self.string_member(0, name)
    }

    /// The string member `name` of the object at `index`, if there is one.
    pub fn string_member(&self, index: usize, name: &str) -> Option<&str> {
        let object = self.node(index).as_object()?;
        match object.get_str(name)?.item() {
            Item::String(s) => Some(s),
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

    /// Where the value at `pointer` from the value at `at` is: `(slot, value, parent)`, where
    /// `slot` is what removing it covers (the member's name, or the array element itself).
    fn locate(&self, at: usize, pointer: &Pointer) -> Option<(usize, usize, Option<usize>)> {
        let mut found = (at, at, None);
        let node = |index| TapeNode {
            items: &self.items,
            index,
        };
        for token in &pointer.tokens {
            let parent = found.1;
            found = match &self.items[parent] {
                Item::Object { .. } => {
                    let (key, _) = node(parent)
                        .members_at()
                        .find(|&(key, _)| matches!(&self.items[key], Item::Key(k) if k == token))?;
                    (key, key + 1, Some(parent))
                }
                Item::Array { .. } => {
                    let position: usize = token.parse().ok()?;
                    let element = node(parent).elements_at().nth(position)?;
                    (element, element, Some(parent))
                }
                _ => return None,
            };
        }
        Some(found)
    }

    /// The value at `pointer`, if present.
    pub fn pointer(&self, pointer: &Pointer) -> Option<TapeNode<'_>> {
        self.pointer_at(0, pointer)
    }

    /// The value at `pointer` from the value at `at`, if present.
    pub fn pointer_at(&self, at: usize, pointer: &Pointer) -> Option<TapeNode<'_>> {
        self.locate(at, pointer).map(|(_, index, _)| TapeNode {
            items: &self.items,
            index,
        })
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

    /// [`Tape::replace_with_string`] from the value at `at`.
    pub fn replace_with_string_at(
        &mut self,
        at: usize,
        pointer: &Pointer,
        replace: impl FnOnce(TapeNode<'_>) -> String,
    ) -> Result<bool, &'static str> {
        let Some((_, index, _)) = self.locate(at, pointer) else {
            return Ok(false);
        };
        if matches!(self.items[index], Item::Array { .. } | Item::Object { .. }) {
            return Err("an object or array");
        }
        let replacement = replace(TapeNode {
            items: &self.items,
            index,
        });
        self.items[index] = Item::String(Cow::Owned(replacement));
        Ok(true)
    }

    /// Removes the member or element at `pointer`; whether there was one. The root stays.
    pub fn remove(&mut self, pointer: &Pointer) -> bool {
        self.remove_at(0, pointer)
    }

    /// [`Tape::remove`] from the value at `at` (which stays).
    pub fn remove_at(&mut self, at: usize, pointer: &Pointer) -> bool {
        let Some((slot, value, Some(parent))) = self.locate(at, pointer) else {
            return false;
        };
        let end = end_of(&self.items, value);
        self.items[slot] = Item::Removed { end };
        if let Item::Array { len, .. } | Item::Object { len, .. } = &mut self.items[parent] {
            *len -= 1;
        }
        true
    }

    /// Writes the root value as compact JSON, members in their original order, as serde_json
    /// would write the same value.
    pub fn write_json(&self, out: &mut String) {
        self.write_json_at(0, out);
    }

    /// Writes the value at `at` as [`Tape::write_json`] writes the root.
    pub fn write_json_at(&self, at: usize, out: &mut String) {
        write_item(&self.items, at, out);
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

/// [`Tape::load`]'s reader: a cursor over JSON text of at most `u32::MAX` bytes (so item
/// indices and byte offsets fit their `u32`s: every item takes at least one byte).
struct Loader<'t, 's> {
    text: &'s str,
    at: usize,
    items: &'t mut Vec<Item<'s>>,
    spans: &'t mut Vec<(u32, u32)>,
    problems: &'t mut Vec<(usize, String)>,
    open: &'t mut Vec<(usize, u32, bool)>,
    /// [`Tape::load_with_repeats`]: objects may repeat a member name, and undecodable values
    /// become placeholders with a problem (the request reports those per event).
    repeats: bool,
}

const END: &str = "unexpected end of the text";

/// What a scalar token is, for [`Loader::push_scalar`].
#[derive(Clone, Copy)]
enum Token {
    Null,
    True,
    False,
    /// A string without escapes, `text[from..to]`.
    Text {
        key: bool,
        from: usize,
        to: usize,
    },
    /// An integer of at most 18 digits.
    Int {
        negative: bool,
        magnitude: u64,
    },
    Object,
    Array,
}

impl<'s> Loader<'_, 's> {
    fn run(mut self) -> Result<(), String> {
        self.value()?;
        loop {
            // After a value: the end of the text, or the next member or element, or the end
            // of the innermost container.
            let Some(&(container, count, object)) = self.open.last() else {
                return match self.peek() {
                    None => Ok(()),
                    Some(c) => Err(self.unexpected(c)),
                };
            };
            match (self.peek(), object) {
                (Some(b','), _) => {
                    self.at += 1;
                    if let Some(top) = self.open.last_mut() {
                        top.1 += 1;
                    }
                    if object {
                        self.key()?;
                    }
                    self.value()?;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    self.at += 1;
                    self.close(container, count + 1)?;
                }
                (Some(c), _) => return Err(self.unexpected(c)),
                (None, _) => return Err(END.to_owned()),
            }
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&c) = bytes.get(self.at) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.at += 1;
        }
        None
    }

    fn unexpected(&self, c: u8) -> String {
        format!("unexpected '{}' at byte {}", c.escape_ascii(), self.at)
    }

    /// Appends the item of a token read from `start` to the cursor. Out of line: inlined into
    /// the reader it measured ~10 % slower.
    #[inline(never)]
    fn push_scalar(&mut self, token: Token, start: usize) {
        if self.items.len() == self.items.capacity() {
            self.items.reserve(self.items.len().max(32));
        }
        if self.items.len() < self.items.capacity() {
            // Known to fit: `push` cannot grow here, so each arm's item is written straight
            // into the vector (an item held across a possible reallocation went through a
            // stack copy that stalled on store forwarding, a third of the reader's time).
            let items = &mut *self.items;
            match token {
                Token::Null => items.push(Item::Null),
                Token::True => items.push(Item::Bool(true)),
                Token::False => items.push(Item::Bool(false)),
                Token::Text {
                    key: true,
                    from,
                    to,
                } => items.push(Item::Key(Cow::Borrowed(&self.text[from..to]))),
                Token::Text { from, to, .. } => {
                    items.push(Item::String(Cow::Borrowed(&self.text[from..to])));
                }
                Token::Int {
                    negative: true,
                    magnitude,
                } => items.push(Item::Number(Number::from(-(magnitude as i64)))),
                Token::Int { magnitude, .. } => items.push(Item::Number(Number::from(magnitude))),
                Token::Object => items.push(Item::Object { len: 0, end: 0 }),
                Token::Array => items.push(Item::Array { len: 0, end: 0 }),
            }
        }
        self.spans.push((start as u32, self.at as u32));
    }

    /// [`Loader::push_scalar`] for the rare items that need decoding.
    #[inline(never)]
    fn push(&mut self, item: Item<'s>, start: usize) {
        self.items.push(item);
        self.spans.push((start as u32, self.at as u32));
    }

    /// One value; a container is opened, its contents read by [`Loader::run`].
    fn value(&mut self) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return Err(END.to_owned());
        };
        let start = self.at;
        match c {
            b'{' | b'[' => {
                self.at += 1;
                if self.open.len() == MAX_DEPTH {
                    return Err(format!("nested more than {MAX_DEPTH} levels deep"));
                }
                let index = self.items.len();
                let (token, closing) = if c == b'{' {
                    (Token::Object, b'}')
                } else {
                    (Token::Array, b']')
                };
                self.push_scalar(token, start);
                if self.peek() == Some(closing) {
                    self.at += 1;
                    self.close_empty(index);
                    return Ok(());
                }
                self.open.push((index, 0, c == b'{'));
                if c == b'{' {
                    self.key()?;
                }
                self.value()
            }
            b'"' => self.string(false),
            b't' => self.literal("true", Token::True),
            b'f' => self.literal("false", Token::False),
            b'n' => self.literal("null", Token::Null),
            b'-' | b'0'..=b'9' => self.number(),
            other => Err(self.unexpected(other)),
        }
    }

    fn close_empty(&mut self, index: usize) {
        let end = self.items.len() as u32;
        match &mut self.items[index] {
            Item::Object { end: e, .. } | Item::Array { end: e, .. } => *e = end,
            _ => unreachable!("an opened container"),
        }
        self.spans[index].1 = self.at as u32;
    }

    /// Ends the innermost container, which holds `len` members or elements.
    fn close(&mut self, container: usize, len: u32) -> Result<(), String> {
        self.open.pop();
        let end = self.items.len() as u32;
        self.spans[container].1 = self.at as u32;
        match &mut self.items[container] {
            Item::Object { len: l, end: e } => {
                (*l, *e) = (len, end);
                if !self.repeats {
                    if let Some(name) = repeated_name(self.items, container, len as usize) {
                        return Err(format!(
                            "member '{name}' appears more than once in one object"
                        ));
                    }
                }
            }
            Item::Array { len: l, end: e } => (*l, *e) = (len, end),
            _ => unreachable!("an opened container"),
        }
        Ok(())
    }

    /// A member's name and the colon after it.
    #[inline(always)]
    fn key(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => {}
            Some(c) => return Err(self.unexpected(c)),
            None => return Err(END.to_owned()),
        }
        self.string(true)?;
        match self.peek() {
            Some(b':') => {
                self.at += 1;
                Ok(())
            }
            Some(c) => Err(self.unexpected(c)),
            None => Err(END.to_owned()),
        }
    }

    /// The string at the cursor's `"`, as a member name or a value: borrowed when it holds no
    /// escape, else decoded by serde_json. Control characters must be escaped.
    #[inline(always)]
    fn string(&mut self, key: bool) -> Result<(), String> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut end = start + 1;
        let mut escaped = false;
        loop {
            end = string_stop(bytes, end).ok_or("unterminated string")?;
            match bytes[end] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    end += 2;
                }
                _ => return Err(format!("control character in a string at byte {end}")),
            }
        }
        self.at = end + 1;
        if !escaped {
            self.push_scalar(
                Token::Text {
                    key,
                    from: start + 1,
                    to: end,
                },
                start,
            );
            return Ok(());
        }
        let text = match serde_json::from_str::<String>(&self.text[start..=end]) {
            Ok(decoded) => Cow::Owned(decoded),
            Err(e) if self.repeats && well_formed_escapes(&bytes[start + 1..end]) => {
                // Escapes that name no character (a lone surrogate): the value's problem, not
                // the text's. The placeholder is the string as written.
                self.problems
                    .push((self.items.len(), format!("string at byte {start}: {e}")));
                Cow::Borrowed(&self.text[start + 1..end])
            }
            Err(e) => return Err(format!("string at byte {start}: {e}")),
        };
        let item = if key {
            Item::Key(text)
        } else {
            Item::String(text)
        };
        self.push(item, start);
        Ok(())
    }

    #[inline(always)]
    fn literal(&mut self, word: &str, token: Token) -> Result<(), String> {
        if !self.text[self.at..].starts_with(word) {
            return Err(format!("expected {word} at byte {}", self.at));
        }
        let start = self.at;
        self.at += word.len();
        self.push_scalar(token, start);
        Ok(())
    }

    /// A number: integers of up to 18 digits read here, anything else by serde_json (which
    /// checks the grammar and refuses numbers out of range, as its deserializer does).
    fn number(&mut self) -> Result<(), String> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut end = start;
        while let Some(c) = bytes.get(end) {
            if !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                break;
            }
            end += 1;
        }
        self.at = end;
        let span = &self.text[start..end];
        let (negative, digits) = match span.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, span),
        };
        let plain = !digits.is_empty()
            && digits.len() <= 18
            && digits.bytes().all(|c| c.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && !(negative && digits == "0");
        if plain {
            let magnitude = digits
                .bytes()
                .fold(0u64, |n, c| n * 10 + u64::from(c - b'0'));
            self.push_scalar(
                Token::Int {
                    negative,
                    magnitude,
                },
                start,
            );
        } else {
            match span.parse::<Number>() {
                Ok(number) => self.push(Item::Number(number), start),
                Err(e) if self.repeats && number_grammar(span) => {
                    // Well-formed but out of range: the value's problem, not the text's.
                    self.problems
                        .push((self.items.len(), format!("number at byte {start}: {e}")));
                    self.push(Item::Null, start);
                }
                Err(e) => return Err(format!("number at byte {start}: {e}")),
            }
        }
        Ok(())
    }
}

/// Whether every escape of a string's contents is one JSON allows (`\"`, `\\`, `\/`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, or `\u` and four hex digits), whatever character it names.
fn well_formed_escapes(contents: &[u8]) -> bool {
    let mut at = 0;
    while let Some(i) = contents[at..].iter().position(|&c| c == b'\\') {
        let escape = at + i + 1;
        at = match contents.get(escape) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => escape + 1,
            Some(b'u')
                if contents
                    .get(escape + 1..escape + 5)
                    .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) =>
            {
                escape + 5
            }
            _ => return false,
        };
    }
    true
}

/// Whether `text` is a JSON number as written: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_grammar(text: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = text.strip_prefix('-').unwrap_or(text);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest.starts_with('0')) {
        return false;
    }
    let mut rest = &rest[int..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(['e', 'E']) {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = &exponent[n..];
    }
    rest.is_empty()
}

/// The index of the first `"`, `\` or control character at or after `from`: eight bytes at a
/// time (the "has a zero byte" and "has a byte less than" bit tricks; the lowest flagged byte
/// is always exact).
fn string_stop(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let found = zero_bytes(v ^ (ONES * u64::from(b'"')))
            | zero_bytes(v ^ (ONES * u64::from(b'\\')))
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGHS);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| at + i)
}

/// Fills the tape from serde_json's events.
struct Builder<'t, 's> {
    items: &'t mut Vec<Item<'s>>,
}

impl<'de> DeserializeSeed<'de> for Builder<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn index_u32<E: de::Error>(index: usize) -> Result<u32, E> {
    u32::try_from(index).map_err(|_| E::custom("document too large"))
}

impl<'de> Visitor<'de> for Builder<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.items.push(Item::Null);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.items.push(Item::Bool(v));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.items.push(Item::Number(v.into()));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.items.push(Item::Number(v.into()));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let number = Number::from_f64(v).ok_or_else(|| E::custom("number out of range"))?;
        self.items.push(Item::Number(number));
        Ok(())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.items.push(Item::String(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.items.push(Item::String(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.items.push(Item::String(Cow::Owned(v)));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let start = self.items.len();
        self.items.push(Item::Array { len: 0, end: 0 });
        let mut len = 0u32;
        while seq
            .next_element_seed(Builder {
                items: &mut *self.items,
            })?
            .is_some()
        {
            len += 1;
        }
        let end = index_u32(self.items.len())?;
        self.items[start] = Item::Array { len, end };
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.items.len();
        self.items.push(Item::Object { len: 0, end: 0 });
        let mut len = 0u32;
        while let Some(key) = map.next_key_seed(StrSeed)? {
            self.items.push(Item::Key(key));
            map.next_value_seed(Builder {
                items: &mut *self.items,
            })?;
            len += 1;
        }
        let end = index_u32(self.items.len())?;
        self.items[start] = Item::Object { len, end };
        if let Some(name) = repeated_name(self.items, start, len as usize) {
            return Err(de::Error::custom(format_args!(
                "member '{name}' appears more than once in one object"
            )));
        }
        Ok(())
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

/// A JSON string, borrowed from the input unless it holds escapes (serde's own `Cow<str>`
/// always copies). Used for member names, and for the envelope's string fields.
pub(crate) struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The representation marker for [`jsonschema::ValidationOptions`].
pub struct TapeJson;

/// One value of a tape; cheap to copy.
#[derive(Clone, Copy)]
pub struct TapeNode<'a> {
    items: &'a [Item<'a>],
    index: usize,
}

impl<'a> TapeNode<'a> {
    fn item(&self) -> &'a Item<'a> {
        &self.items[self.index]
    }

    /// `(name index, value index)` of each member of the object at this node.
    fn members_at(&self) -> MemberIndices<'a> {
        MemberIndices {
            items: self.items,
            next: self.index + 1,
            end: end_of(self.items, self.index) as usize,
        }
    }

    /// The index of each element of the array at this node.
    fn elements_at(&self) -> ElementIndices<'a> {
        ElementIndices {
            items: self.items,
            next: self.index + 1,
            end: end_of(self.items, self.index) as usize,
        }
    }

    fn at(&self, index: usize) -> Self {
        Self {
            items: self.items,
            index,
        }
    }
}

impl fmt::Debug for TapeNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_value(), f)
    }
}

struct MemberIndices<'a> {
    items: &'a [Item<'a>],
    next: usize,
    end: usize,
}

impl Iterator for MemberIndices<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        while self.next < self.end {
            let key = self.next;
            if let Item::Removed { end } = self.items[key] {
                self.next = end as usize;
                continue;
            }
            self.next = end_of(self.items, key + 1) as usize;
            return Some((key, key + 1));
        }
        None
    }
}

struct ElementIndices<'a> {
    items: &'a [Item<'a>],
    next: usize,
    end: usize,
}

impl Iterator for ElementIndices<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.next < self.end {
            let element = self.next;
            self.next = end_of(self.items, element) as usize;
            if !matches!(self.items[element], Item::Removed { .. }) {
                return Some(element);
            }
        }
        None
    }
}

impl Json for TapeJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = Vec<Item<'static>>;

    /// Lookups scan the members, so one pass over them is never worse than a lookup. (Large,
    /// not `usize::MAX`: the validator multiplies it by a keyword's count of names.)
    const KEYS_PER_LOOKUP: usize = 1 << 20;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>(
        buffer: &mut Vec<Item<'static>>,
        string: &str,
        f: impl FnOnce(TapeNode<'_>) -> T,
    ) -> T {
        buffer.clear();
        buffer.push(Item::String(Cow::Owned(string.to_owned())));
        f(TapeNode {
            items: buffer,
            index: 0,
        })
    }
}

impl<'a> Node<'a, TapeJson> for TapeNode<'a> {
    type Object = TapeObject<'a>;
    type Array = TapeArray<'a>;
    type Number = &'a Number;

    fn as_object(&self) -> Option<TapeObject<'a>> {
        match self.item() {
            Item::Object { len, .. } => Some(TapeObject {
                node: *self,
                len: *len as usize,
            }),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<TapeArray<'a>> {
        match self.item() {
            Item::Array { len, .. } => Some(TapeArray {
                node: *self,
                len: *len as usize,
            }),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self.item() {
            Item::String(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self.item() {
            Item::Number(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.item() {
            Item::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.item(), Item::Null)
    }

    fn json_type(&self) -> JsonType {
        match self.item() {
            Item::Null => JsonType::Null,
            Item::Bool(_) => JsonType::Boolean,
            Item::Number(_) => JsonType::Number,
            Item::String(_) | Item::Key(_) => JsonType::String,
            Item::Array { .. } => JsonType::Array,
            Item::Object { .. } => JsonType::Object,
            // Never a node: containers skip removed items.
            Item::Removed { .. } => JsonType::Null,
        }
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let Item::String(s) = self.item() else {
            return None;
        };
        // A code point is 1 to 4 bytes: the byte length often decides without counting.
        let bytes = s.len() as u64;
        let fewest = bytes.div_ceil(4);
        if bytes < min || fewest > max {
            return Some(false);
        }
        if min <= fewest && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(s.chars().count() as u64)))
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match (self.item(), expected) {
            (Item::String(s), _) => expected.as_str() == Some(s.as_ref()),
            (Item::Bool(b), _) => expected.as_bool() == Some(*b),
            (Item::Null, _) => expected.is_null(),
            (Item::Number(n), Value::Number(_)) => {
                jsonschema::json::cmp::equal(&Value::Number(n.clone()), expected)
            }
            (Item::Number(_), _) => false,
            _ => jsonschema::json::cmp::equal(&self.to_value(), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(match self.item() {
            Item::Null | Item::Removed { .. } => Value::Null,
            Item::Bool(b) => Value::Bool(*b),
            Item::Number(n) => Value::Number(n.clone()),
            Item::String(s) | Item::Key(s) => Value::String(s.clone().into_owned()),
            Item::Array { .. } => Value::Array(
                self.elements_at()
                    .map(|i| self.at(i).to_value().into_owned())
                    .collect(),
            ),
            Item::Object { .. } => Value::Object(
                self.members_at()
                    .map(|(key, value)| {
                        let Item::Key(name) = &self.items[key] else {
                            unreachable!("members start with their name")
                        };
                        (name.to_string(), self.at(value).to_value().into_owned())
                    })
                    .collect::<Map<_, _>>(),
            ),
        })
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            self.items.as_ptr() as usize,
            u32::try_from(self.index).ok()?,
        ))
    }
}

/// An object of a tape.
#[derive(Clone, Copy)]
pub struct TapeObject<'a> {
    node: TapeNode<'a>,
    len: usize,
}

impl<'a> TapeObject<'a> {
    fn get_str(&self, name: &str) -> Option<TapeNode<'a>> {
        self.node
            .members_at()
            .find(|&(key, _)| matches!(&self.node.items[key], Item::Key(k) if k == name))
            .map(|(_, value)| self.node.at(value))
    }
}

pub struct Members<'a> {
    node: TapeNode<'a>,
    indices: MemberIndices<'a>,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, TapeNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value) = self.indices.next()?;
        let Item::Key(name) = &self.node.items[key] else {
            unreachable!("members start with their name")
        };
        Some((name.as_ref(), self.node.at(value)))
    }
}

impl<'a> Object<'a, TapeJson> for TapeObject<'a> {
    type Node = TapeNode<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, key: &Box<str>) -> Option<TapeNode<'a>> {
        self.get_str(key)
    }

    fn members(&self) -> Members<'a> {
        Members {
            node: self.node,
            indices: self.node.members_at(),
        }
    }
}

/// An array of a tape.
#[derive(Clone, Copy)]
pub struct TapeArray<'a> {
    node: TapeNode<'a>,
    len: usize,
}

pub struct Elements<'a> {
    node: TapeNode<'a>,
    indices: ElementIndices<'a>,
}

impl<'a> Iterator for Elements<'a> {
    type Item = TapeNode<'a>;

    fn next(&mut self) -> Option<TapeNode<'a>> {
        self.indices.next().map(|i| self.node.at(i))
    }
}

impl<'a> Array<'a, TapeJson> for TapeArray<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = Elements<'a>;

    fn len(&self) -> usize {
        self.len
    }

    fn elements(&self) -> Elements<'a> {
        Elements {
            node: self.node,
            indices: self.node.elements_at(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
