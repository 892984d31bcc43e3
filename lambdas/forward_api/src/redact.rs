//! Redaction per the topic's `redactionHint`, applied before an event leaves the session.

use eventfabric_registry::RedactionHint;
use serde_json::Value;

/// Removes every `drop` pointer from the payload, in place.
///
/// `hash` pointers need a keyed hash whose key comes from a secret store, which this deployment
/// does not wire yet: such events are refused rather than sent with the field in clear.
pub fn redact(payload: &mut Value, hint: Option<&RedactionHint>) -> Result<(), String> {
    let Some(hint) = hint else { return Ok(()) };
    if let Some(pointer) = hint.hash.iter().find(|p| payload.pointer(p).is_some()) {
        return Err(format!(
            "field {pointer} must be hashed before it leaves the session, and no hashing key is configured"
        ));
    }
    for pointer in &hint.drop {
        remove_pointer(payload, pointer);
    }
    Ok(())
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key: std::borrow::Cow<'_, str> = if last.contains('~') {
        last.replace("~1", "/").replace("~0", "~").into()
    } else {
        last.into()
    };
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(key.as_ref());
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = key.parse::<usize>() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_named_fields_at_any_depth() {
        let hint = RedactionHint {
            drop: vec!["/email".into(), "/contact/phone".into(), "/absent".into()],
            hash: vec![],
        };
        let mut payload =
            json!({"email": "a@b.c", "name": "A", "contact": {"phone": "1", "city": "X"}});
        redact(&mut payload, Some(&hint)).unwrap();
        assert_eq!(payload, json!({"name": "A", "contact": {"city": "X"}}));
    }

    #[test]
    fn refuses_fields_that_need_hashing() {
        let hint = RedactionHint {
            drop: vec![],
            hash: vec!["/userId".into()],
        };
        let err = redact(&mut json!({"userId": "u1"}), Some(&hint)).unwrap_err();
        assert!(err.contains("/userId"), "{err}");
        // Nothing to hash in this payload: it may leave.
        let mut other = json!({"other": 1});
        redact(&mut other, Some(&hint)).unwrap();
        assert_eq!(other, json!({"other": 1}));
    }
}
