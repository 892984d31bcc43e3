//! Redaction per the topic's `redactionHint`, applied before an event leaves the session.
//!
//! `drop` pointers are removed. `hash` pointers are replaced by `hmac-sha256:<base64url>` of the
//! value (a string's UTF-8 bytes, any other value's JSON text) under a key derived from the
//! deployment secret: equal values still join across events, but cannot be reversed or
//! confirmed by guessing without the key. Without a key, such events are refused, never sent in
//! clear.

use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use eventfabric_registry::RedactionHint;
use serde_json::Value;

/// The prefix of every hashed value, naming the algorithm.
pub const HASH_PREFIX: &str = "hmac-sha256:";

/// Applies redaction hints; holds the hashing key when the deployment has one.
pub struct Redactor {
    /// An HMAC context already keyed: cloning it per value skips the key setup.
    key: Option<hmac::Context>,
}

impl Redactor {
    /// No hashing key: `hash` hints make events fail with `redaction_unavailable`.
    pub fn without_hashing() -> Self {
        Self { key: None }
    }

    /// Derives the hashing key from the deployment secret (HKDF-SHA256 with its own label, so
    /// the token-signing key itself never hashes anything).
    pub fn from_secret(secret: &[u8]) -> Self {
        let key: hmac::Key = hkdf::Salt::new(hkdf::HKDF_SHA256, b"eventfabric")
            .extract(secret)
            .expand(&[b"forward-api redaction hash v1"], hmac::HMAC_SHA256)
            .expect("HMAC-SHA256 key length is a valid HKDF output length")
            .into();
        Self {
            key: Some(hmac::Context::with_key(&key)),
        }
    }

    /// Drops and hashes, in place. Returns whether the payload changed.
    pub fn redact(
        &self,
        payload: &mut Value,
        hint: Option<&RedactionHint>,
    ) -> Result<bool, String> {
        let Some(hint) = hint else { return Ok(false) };
        let mut changed = false;
        for pointer in &hint.hash {
            let Some(value) = payload.pointer_mut(pointer) else {
                continue;
            };
            let Some(key) = &self.key else {
                return Err(format!(
                    "field {pointer} must be hashed before it leaves the session, and no hashing key is configured"
                ));
            };
            *value = Value::String(hash_value(key, value));
            changed = true;
        }
        for pointer in &hint.drop {
            changed |= remove_pointer(payload, pointer);
        }
        Ok(changed)
    }
}

fn hash_value(keyed: &hmac::Context, value: &Value) -> String {
    let mut context = keyed.clone();
    match value {
        Value::String(s) => context.update(s.as_bytes()),
        other => context.update(other.to_string().as_bytes()),
    }
    let tag = context.sign();
    let mut out = String::with_capacity(HASH_PREFIX.len() + 43);
    out.push_str(HASH_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
    out
}

/// Removes the value at `pointer`; whether there was one.
fn remove_pointer(value: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let key: std::borrow::Cow<'_, str> = if last.contains('~') {
        last.replace("~1", "/").replace("~0", "~").into()
    } else {
        last.into()
    };
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(key.as_ref()).is_some(),
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn drops_named_fields_at_any_depth() {
        let hint = RedactionHint {
            drop: vec!["/email".into(), "/contact/phone".into(), "/absent".into()],
            hash: vec![],
        };
        let mut payload =
            json!({"email": "a@b.c", "name": "A", "contact": {"phone": "1", "city": "X"}});
        assert!(
            Redactor::without_hashing()
                .redact(&mut payload, Some(&hint))
                .unwrap()
        );
        assert_eq!(payload, json!({"name": "A", "contact": {"city": "X"}}));
        // Nothing to drop: unchanged, and said so (the raw payload can be forwarded as is).
        assert!(
            !Redactor::without_hashing()
                .redact(&mut payload, Some(&hint))
                .unwrap()
        );
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
        redactor.redact(&mut a, Some(&hint)).unwrap();
        redactor.redact(&mut b, Some(&hint)).unwrap();
        let hashed = a["userId"].as_str().unwrap();
        assert!(hashed.starts_with(HASH_PREFIX), "{hashed}");
        assert_eq!(hashed.len(), HASH_PREFIX.len() + 43);
        assert!(!a.to_string().contains("u1") && !a.to_string().contains("12345"));
        // Stable for equal values (joins still work), different under another key.
        assert_eq!(a["userId"], b["userId"]);
        assert_ne!(a["userId"], a["geo"]["zip"]);
        let mut c = json!({"userId": "u1"});
        Redactor::from_secret(b"another-secret-of-32-bytes-length!")
            .redact(&mut c, Some(&hint))
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
        let err = redactor
            .redact(&mut json!({"userId": "u1"}), Some(&hint))
            .unwrap_err();
        assert!(err.contains("/userId"), "{err}");
        // Nothing to hash in this payload: it may leave.
        let mut other = json!({"other": 1});
        assert!(!redactor.redact(&mut other, Some(&hint)).unwrap());
        assert_eq!(other, json!({"other": 1}));
    }
}
