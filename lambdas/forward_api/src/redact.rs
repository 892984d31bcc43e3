//! Redaction per the topic's `redactionHint`, applied before an event leaves the session.
//!
//! `drop` pointers are removed. `hash` pointers are replaced by `hmac-sha256:<base64url>` of the
//! value (a string's UTF-8 bytes, any other value's JSON text) under a key derived from the
//! deployment secret: equal values still join across events, but cannot be reversed or
//! confirmed by guessing without the key. Without a key, such events are refused, never sent in
//! clear.

use base64::Engine;
use eventfabric_registry::RedactionHint;
use hmac::{Hmac, KeyInit, Mac};
use jsonschema::json::Node;
use sha2::Sha256;

use crate::tape::{Pointer, Tape, TapeNode};

/// The prefix of every hashed value, naming the algorithm.
pub const HASH_PREFIX: &str = "hmac-sha256:";

/// A topic's `redactionHint` with its pointers parsed, once at start-up.
#[derive(Debug, Clone)]
pub struct RedactionPlan {
    hash: Vec<Pointer>,
    drop: Vec<Pointer>,
}

impl RedactionPlan {
    /// Fails on a pointer that is not RFC 6901 (the registry's own check refuses those too).
    pub fn compile(hint: &RedactionHint) -> Result<Self, String> {
        let parse = |pointers: &[String]| {
            pointers
                .iter()
                .map(|p| Pointer::parse(p).ok_or_else(|| format!("'{p}' is not a JSON pointer")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            hash: parse(&hint.hash)?,
            drop: parse(&hint.drop)?,
        })
    }
}

/// Applies redaction hints; holds the hashing key when the deployment has one.
pub struct Redactor {
    /// An HMAC already keyed: cloning it per value skips the key setup.
    key: Option<Hmac<Sha256>>,
}

impl Redactor {
    /// No hashing key: `hash` hints make events fail with `redaction_unavailable`.
    pub fn without_hashing() -> Self {
        Self { key: None }
    }

    /// Derives the hashing key from the deployment's redaction key secret (HKDF-SHA256 with its
    /// own label). That secret is not the token-signing one, which may rotate: hashed values
    /// must stay the same for as long as they are joined on.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(b"eventfabric"), secret)
            .expand(b"forward-api redaction hash v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            key: Some(Hmac::new_from_slice(&key).expect("HMAC takes keys of any length")),
        }
    }

    /// Drops and hashes, in place. Returns whether the payload changed.
    pub fn redact(
        &self,
        payload: &mut Tape<'_>,
        plan: Option<&RedactionPlan>,
    ) -> Result<bool, String> {
        self.redact_at(payload, 0, plan)
    }

    /// [`Redactor::redact`] for the payload at `at` of a tape (the request's, edited where it
    /// is rather than copied out).
    pub fn redact_at(
        &self,
        tape: &mut Tape<'_>,
        at: usize,
        plan: Option<&RedactionPlan>,
    ) -> Result<bool, String> {
        let Some(hint) = plan else { return Ok(false) };
        let payload = tape;
        let mut changed = false;
        for pointer in &hint.hash {
            if payload.pointer_at(at, pointer).is_none() {
                continue;
            }
            let Some(key) = &self.key else {
                return Err(format!(
                    "field {pointer} must be hashed before it leaves the session, and no hashing key is configured"
                ));
            };
            changed |= payload
                .replace_with_string_at(at, pointer, |value| hash_value(key, value))
                .map_err(|what| {
                    format!("field {pointer} is {what}; only a single value can be hashed")
                })?;
        }
        for pointer in &hint.drop {
            changed |= payload.remove_at(at, pointer);
        }
        Ok(changed)
    }
}

fn hash_value(keyed: &Hmac<Sha256>, value: TapeNode<'_>) -> String {
    let mut mac = keyed.clone();
    match value.as_string() {
        Some(s) => mac.update(s.as_bytes()),
        None => mac.update(value.to_value().to_string().as_bytes()),
    }
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(HASH_PREFIX.len() + 43);
    out.push_str(HASH_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(tag.as_slice(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Redacts `payload` through a tape, the way the forwarder does; the result and whether it
    /// changed.
    fn redact(
        redactor: &Redactor,
        payload: &mut Value,
        hint: &RedactionHint,
    ) -> Result<bool, String> {
        let text = payload.to_string();
        let mut tape = Tape::default();
        tape.parse(&text).unwrap();
        let plan = RedactionPlan::compile(hint).unwrap();
        let changed = redactor.redact(&mut tape, Some(&plan))?;
        let mut out = String::new();
        tape.write_json(&mut out);
        *payload = serde_json::from_str(&out).unwrap();
        Ok(changed)
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn drops_named_fields_at_any_depth() {
        let hint = RedactionHint {
            drop: vec!["/email".into(), "/contact/phone".into(), "/absent".into()],
            hash: vec![],
        };
        let mut payload =
            json!({"email": "a@b.c", "name": "A", "contact": {"phone": "1", "city": "X"}});
        assert!(redact(&Redactor::without_hashing(), &mut payload, &hint).unwrap());
        assert_eq!(payload, json!({"name": "A", "contact": {"city": "X"}}));
        // Nothing to drop: unchanged, and said so (the raw payload can be forwarded as is).
        assert!(!redact(&Redactor::without_hashing(), &mut payload, &hint).unwrap());
    }

    #[test]
    fn hashes_with_a_key_derived_from_the_secret() {
        let hint = RedactionHint {
            drop: vec![],
            hash: vec!["/userId".into(), "/geo/zip".into()],
        };
        let redactor = Redactor::from_secret(SECRET);
        let mut a = json!({"userId": "u1", "geo": {"zip": 12345}, "n": 1});
        let mut b = json!({"userId": "u1", "geo": {"zip": 12345}, "n": 2});
        redact(&redactor, &mut a, &hint).unwrap();
        redact(&redactor, &mut b, &hint).unwrap();
        let hashed = a["userId"].as_str().unwrap();
        assert!(hashed.starts_with(HASH_PREFIX), "{hashed}");
        assert_eq!(hashed.len(), HASH_PREFIX.len() + 43);
        assert!(!a.to_string().contains("u1") && !a.to_string().contains("12345"));
        // Stable for equal values (joins still work), different under another key.
        assert_eq!(a["userId"], b["userId"]);
        assert_ne!(a["userId"], a["geo"]["zip"]);
        let mut c = json!({"userId": "u1"});
        redact(
            &Redactor::from_secret(b"another-secret-of-32-bytes-length!"),
            &mut c,
            &hint,
        )
        .unwrap();
        assert_ne!(a["userId"], c["userId"]);
    }

    #[test]
    fn refuses_fields_that_need_hashing_without_a_key() {
        let hint = RedactionHint {
            drop: vec![],
            hash: vec!["/userId".into()],
        };
        let redactor = Redactor::without_hashing();
        let err = redact(&redactor, &mut json!({"userId": "u1"}), &hint).unwrap_err();
        assert!(err.contains("/userId"), "{err}");
        // Nothing to hash in this payload: it may leave.
        let mut other = json!({"other": 1});
        assert!(!redact(&redactor, &mut other, &hint).unwrap());
        assert_eq!(other, json!({"other": 1}));
    }

    #[test]
    fn hashes_match_an_independent_implementation() {
        // Python's hmac/hashlib: HKDF-SHA256(salt "eventfabric", info "forward-api redaction
        // hash v1") of SECRET, then HMAC-SHA256 of "u1" under it, base64url without padding.
        let hint = RedactionHint {
            drop: vec![],
            hash: vec!["/userId".into()],
        };
        let mut payload = json!({"userId": "u1"});
        redact(&Redactor::from_secret(SECRET), &mut payload, &hint).unwrap();
        assert_eq!(
            payload["userId"],
            "hmac-sha256:lBbJUT93VneXlhM6TUgRzBDdLrM8nVmL5KF5M0o5DYI"
        );
    }
}
