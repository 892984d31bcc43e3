//! [`Tape::load`]'s reader.

use std::borrow::Cow;

use eventfabric_core::scan::json_string_stop;
use serde_json::Number;

#[allow(unused_imports)] // doc links
use super::Tape;
use super::{Item, MAX_DEPTH, repeated_name};

/// [`Tape::load`]'s reader: a cursor over JSON text of at most `u32::MAX` bytes (so item
/// indices and byte offsets fit their `u32`s: every item takes at least one byte).
pub(super) struct Loader<'t, 's> {
    pub(super) text: &'s str,
    pub(super) at: usize,
    pub(super) items: &'t mut Vec<Item<'s>>,
    pub(super) spans: &'t mut Vec<(u32, u32)>,
    pub(super) problems: &'t mut Vec<(usize, String)>,
    pub(super) open: &'t mut Vec<(usize, u32, bool)>,
    /// [`Tape::load_with_repeats`]: objects may repeat a member name, and undecodable values
    /// become placeholders with a problem (the request reports those per event).
    pub(super) repeats: bool,
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
    pub(super) fn run(mut self) -> Result<(), String> {
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
    /// the reader, the benchmark measured it slower.
    #[inline(never)]
    fn push_scalar(&mut self, token: Token, start: usize) {
        if self.items.len() == self.items.capacity() {
            self.items.reserve(self.items.len().max(32));
        }
        if self.items.len() < self.items.capacity() {
            // Known to fit: `push` cannot grow here, so each arm's item is written straight
            // into the vector (an item held across a possible reallocation went through a
            // stack copy that stalled on store forwarding).
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
            end = json_string_stop(bytes, end).ok_or("unterminated string")?;
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
pub(super) fn well_formed_escapes(contents: &[u8]) -> bool {
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
pub(super) fn number_grammar(text: &str) -> bool {
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
