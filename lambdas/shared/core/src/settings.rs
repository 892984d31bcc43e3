//! A function's settings from its environment: every binary reads them the same way, and a
//! missing or wrong one fails the cold start with its name and what it is for.

/// A required setting, or an error naming it and what it is for.
pub fn required(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    what: &str,
) -> Result<String, String> {
    env(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name} is not set: {what}"))
}

/// A whole number of at least 1, or `default` when `name` is not set.
pub fn count(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: usize,
) -> Result<usize, String> {
    match env(name) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{name} is '{v}': a whole number of at least 1")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_named_when_missing_or_wrong() {
        let none = |_: &str| None;
        assert_eq!(
            required(&none, "APP_TABLE_NAME", "the app table").unwrap_err(),
            "APP_TABLE_NAME is not set: the app table"
        );
        let empty = |_: &str| Some(String::new());
        assert!(required(&empty, "X", "x").is_err());
        assert_eq!(count(&none, "N", 10).unwrap(), 10);
        let zero = |_: &str| Some("0".to_owned());
        assert_eq!(
            count(&zero, "N", 10).unwrap_err(),
            "N is '0': a whole number of at least 1"
        );
        let three = |_: &str| Some("3".to_owned());
        assert_eq!(count(&three, "N", 10).unwrap(), 3);
    }
}
