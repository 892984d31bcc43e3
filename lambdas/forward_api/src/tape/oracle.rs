//! The reference reader: a tape filled from serde_json's own deserializer events. The hot
//! path's reader ([`Tape::load`]) is held to it by the differential test and the `tape_load`
//! fuzz target; nothing else uses it, so it is compiled for tests and fuzzing (feature
//! `oracle`) only.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::{Item, Tape, repeated_name};

impl<'s> Tape<'s> {
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
