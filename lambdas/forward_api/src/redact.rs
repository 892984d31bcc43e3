//! Redaction per the topic's `redactionHint`, applied before an event leaves the session.

use eventfabric_registry::RedactionHint;
use serde_json::Value;

/// Returns the payload with every `drop` pointer removed.
///
/// `hash` pointers need a keyed hash whose key comes from a secret store, which this deployment
/// does not wire yet: such events are refused rather than sent with the field in clear.
pub fn redact(payload: &Value, hint: Option<&RedactionHint>) -> Result<Value, String> {
    let Some(hint) = hint else {
        return Ok(payload.clone());
    };
    if let Some(pointer) = hint.hash.iter().find(|p| payload.pointer(p).is_some()) {
        return Err(format!(
            "field {pointer} must be hashed before it leaves the session, and no hashing key is configured"
        ));
    }
    let mut out = payload.clone();
    for pointer in &hint.drop {
        remove_pointer(&mut out, pointer);
    }
    Ok(out)
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&key);
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
        let out = redact(
            &json!({"email": "a@b.c", "name": "A", "contact": {"phone": "1", "city": "X"}}),
            Some(&hint),
        )
        .unwrap();
        assert_eq!(out, json!({"name": "A", "contact": {"city": "X"}}));
    }

    #[test]
    fn refuses_fields_that_need_hashing() {
        let hint = RedactionHint {
            drop: vec![],
            hash: vec!["/userId".into()],
        };
        assert!(
            redact(&json!({"userId": "u1"}), Some(&hint))
                .unwrap_err()
                .contains("/userId")
        );
        // Nothing to hash in this payload: it may leave.
        assert_eq!(
            redact(&json!({"other": 1}), Some(&hint)).unwrap(),
            json!({"other": 1})
        );
    }
}
