//! JSON pointers (RFC 6901) into a tape, and the edits redaction makes through them.

use std::borrow::Cow;
use std::fmt;

use super::{Item, Tape, TapeNode, end_of};

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
        let tokens = eventfabric_registry::pointer_tokens(text)?;
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

impl Tape<'_> {
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

    /// The value at `pointer` from the value at `at`, if present.
    pub fn pointer_at(&self, at: usize, pointer: &Pointer) -> Option<TapeNode<'_>> {
        self.locate(at, pointer).map(|(_, index, _)| TapeNode {
            items: &self.items,
            index,
        })
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
}
