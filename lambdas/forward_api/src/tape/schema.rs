//! The tape as a jsonschema representation: the compiled validators read payloads and metas
//! where they are, without a `serde_json::Value`.

use std::borrow::Cow;
use std::fmt;

use jsonschema::json::{Array, Json, Node, NodeIdentity, Object};
use jsonschema::types::JsonType;
use serde_json::{Map, Number, Value};

use super::{Item, end_of};

/// The representation marker for [`jsonschema::ValidationOptions`].
pub struct TapeJson;

/// One value of a tape; cheap to copy.
#[derive(Clone, Copy)]
pub struct TapeNode<'a> {
    pub(super) items: &'a [Item<'a>],
    pub(super) index: usize,
}

impl<'a> TapeNode<'a> {
    pub(super) fn item(&self) -> &'a Item<'a> {
        &self.items[self.index]
    }

    /// `(name index, value index)` of each member of the object at this node.
    pub(super) fn members_at(&self) -> MemberIndices<'a> {
        MemberIndices {
            items: self.items,
            next: self.index + 1,
            end: end_of(self.items, self.index) as usize,
        }
    }

    /// The index of each element of the array at this node.
    pub(super) fn elements_at(&self) -> ElementIndices<'a> {
        ElementIndices {
            items: self.items,
            next: self.index + 1,
            end: end_of(self.items, self.index) as usize,
        }
    }

    pub(super) fn at(&self, index: usize) -> Self {
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

pub(super) struct MemberIndices<'a> {
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

pub(super) struct ElementIndices<'a> {
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
    pub(super) node: TapeNode<'a>,
    pub(super) len: usize,
}

impl<'a> TapeObject<'a> {
    pub(super) fn get_str(&self, name: &str) -> Option<TapeNode<'a>> {
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
    pub(super) node: TapeNode<'a>,
    pub(super) len: usize,
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
