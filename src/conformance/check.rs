//! Variables and matchers (pure): `${name}` substitution in requests and expectations, and the
//! partial expectations of a response (`status`, `headers`, JSON members by pointer).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// The variables of a scenario run: built-ins (`run`, `domain`, `password`) and captures.
pub type Vars = BTreeMap<String, Value>;

/// The matcher keywords; an object with one of them (or `pluck` with `set`) is a matcher,
/// anything else is compared for equality.
const KEYWORDS: &[&str] = &[
    "anyOf", "exists", "type", "matches", "equals", "length", "contains", "not", "min", "max",
];

/// `value` with every `${name}` replaced; a string that is exactly `${name}` becomes the
/// variable's JSON value. A variable that is not set is an error naming it.
pub fn substitute(value: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => substitute_str_value(text, vars)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| substitute(item, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => {
            let mut out = serde_json::Map::new();
            for (key, member) in members {
                out.insert(substitute_str(key, vars)?, substitute(member, vars)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn substitute_str_value(text: &str, vars: &Vars) -> Result<Value, String> {
    if let Some(name) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
        if !name.contains(['$', '{', '}']) {
            return vars.get(name).cloned().ok_or_else(|| not_set(name));
        }
    }
    substitute_str(text, vars).map(Value::String)
}

fn not_set(name: &str) -> String {
    format!("variable ${{{name}}} is not set (an earlier step did not capture it)")
}

/// `text` with every `${name}` replaced by the variable's text (strings as they are, other
/// values as JSON).
pub fn substitute_str(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        // `$${` is a literal `${` (an Adaptive Card's own `${title}`).
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
            continue;
        }
        if let Some((name, tail)) = after.strip_prefix("${").and_then(|inner| {
            inner
                .find('}')
                .map(|end| (&inner[..end], &inner[end + 1..]))
        }) {
            match vars.get(name) {
                Some(Value::String(value)) => out.push_str(value),
                Some(value) => out.push_str(&value.to_string()),
                None => return Err(not_set(name)),
            }
            rest = tail;
            continue;
        }
        out.push('$');
        rest = &after[1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `status` (a number or a list of numbers) allows `actual`.
pub fn status_matches(expected: &Value, actual: u16) -> bool {
    match expected {
        Value::Array(options) => options.iter().any(|o| o.as_u64() == Some(actual as u64)),
        other => other.as_u64() == Some(actual as u64),
    }
}

/// Checks a matcher's own shape (at load time).
pub fn validate_matcher(matcher: &Value) -> Result<(), String> {
    let Some((keyword, argument)) = as_matcher(matcher) else {
        return Ok(());
    };
    match keyword {
        "anyOf" => match argument {
            Value::Array(options) => options.iter().try_for_each(validate_matcher),
            _ => Err("anyOf takes a list".to_string()),
        },
        "exists" if !argument.is_boolean() => Err("exists takes true or false".to_string()),
        "type"
            if !matches!(
                argument.as_str(),
                Some("string" | "number" | "integer" | "boolean" | "array" | "object" | "null")
            ) =>
        {
            Err(format!("unknown type {argument}"))
        }
        "matches" => match argument.as_str().map(|re| Regex::new(&placeholders(re))) {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(format!("bad regex: {error}")),
            None => Err("matches takes a regex".to_string()),
        },
        "length" | "min" | "max" if !argument.is_number() => {
            Err(format!("{keyword} takes a number"))
        }
        "contains" | "not" => validate_matcher(argument),
        "pluck" if !argument.is_string() => Err("pluck takes a JSON pointer".to_string()),
        _ => Ok(()),
    }
}

/// `text` with each `${name}` replaced by `x`, to check a regex before its variables are known.
fn placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push('x');
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `(keyword, argument)` when `value` is a matcher object.
fn as_matcher(value: &Value) -> Option<(&str, &Value)> {
    let members = value.as_object()?;
    if members.len() == 2 && members.contains_key("pluck") && members.contains_key("set") {
        return Some(("pluck", &members["pluck"]));
    }
    if members.len() != 1 {
        return None;
    }
    let (key, argument) = members.iter().next()?;
    KEYWORDS
        .contains(&key.as_str())
        .then_some((key.as_str(), argument))
}

/// Checks `actual` (absent: `None`) against `matcher`; `Err` says what was wrong.
pub fn check(matcher: &Value, actual: Option<&Value>) -> Result<(), String> {
    let Some((keyword, argument)) = as_matcher(matcher) else {
        return match actual {
            Some(actual) if json_eq(matcher, actual) => Ok(()),
            Some(actual) => Err(format!("is {}", short(actual))),
            None => Err("is missing".to_string()),
        };
    };
    match keyword {
        "exists" => match (argument.as_bool() == Some(true), actual) {
            (true, Some(_)) | (false, None) => Ok(()),
            (true, None) => Err("is missing".to_string()),
            (false, Some(actual)) => Err(format!("is {}", short(actual))),
        },
        "anyOf" => {
            let options = argument.as_array().map(Vec::as_slice).unwrap_or_default();
            if options.iter().any(|option| check(option, actual).is_ok()) {
                Ok(())
            } else {
                Err(present(actual))
            }
        }
        "not" => match check(argument, actual) {
            Ok(()) => Err(present(actual)),
            Err(_) => Ok(()),
        },
        "equals" => check_literal(argument, actual),
        // A list that is absent is an empty list.
        "pluck" => check_pluck(matcher, actual.unwrap_or(&Value::Null)),
        _ => {
            let Some(actual) = actual else {
                return Err("is missing".to_string());
            };
            let ok = match keyword {
                "type" => {
                    type_name(actual) == argument.as_str().unwrap_or_default()
                        || (argument == "integer" && (actual.is_i64() || actual.is_u64()))
                }
                "matches" => {
                    let text = match actual {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    Regex::new(argument.as_str().unwrap_or_default())
                        .map(|re| re.is_match(&text))
                        .unwrap_or(false)
                }
                "length" => {
                    let length = match actual {
                        Value::Array(items) => Some(items.len()),
                        Value::String(text) => Some(text.chars().count()),
                        Value::Object(members) => Some(members.len()),
                        _ => None,
                    };
                    length.map(|l| l as u64) == argument.as_u64()
                }
                "contains" => match actual {
                    Value::Array(items) => items.iter().any(|item| partial(argument, item)),
                    Value::String(text) => {
                        argument.as_str().is_some_and(|part| text.contains(part))
                    }
                    _ => false,
                },
                "min" => actual
                    .as_f64()
                    .zip(argument.as_f64())
                    .is_some_and(|(a, m)| a >= m),
                "max" => actual
                    .as_f64()
                    .zip(argument.as_f64())
                    .is_some_and(|(a, m)| a <= m),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(format!("is {}", short(actual)))
            }
        }
    }
}

/// An element of a list against `contains`: a plain object matches an object that has each of
/// its members (each a matcher); anything else is `check`.
fn partial(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(members), Value::Object(_)) if as_matcher(expected).is_none() => members
            .iter()
            .all(|(key, matcher)| check(matcher, actual.get(key)).is_ok()),
        _ => check(expected, Some(actual)).is_ok(),
    }
}

fn check_literal(expected: &Value, actual: Option<&Value>) -> Result<(), String> {
    match actual {
        Some(actual) if json_eq(expected, actual) => Ok(()),
        other => Err(present(other)),
    }
}

/// `{"pluck": "/hitId", "set": [...]}`: the values at the pointer in each element of an array,
/// compared as a set (order ignored).
fn check_pluck(matcher: &Value, actual: &Value) -> Result<(), String> {
    let pointer = matcher["pluck"].as_str().unwrap_or_default();
    let mut want: Vec<String> = matcher["set"]
        .as_array()
        .into_iter()
        .flatten()
        .map(short)
        .collect();
    let mut got: Vec<String> = match actual {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.pointer(pointer)
                    .map(short)
                    .unwrap_or_else(|| "(missing)".into())
            })
            .collect(),
        Value::Null => Vec::new(),
        other => return Err(format!("is {}, not a list", short(other))),
    };
    want.sort();
    got.sort();
    if want == got {
        Ok(())
    } else {
        Err(format!("has {pointer} values [{}]", got.join(", ")))
    }
}

fn present(actual: Option<&Value>) -> String {
    match actual {
        Some(actual) => format!("is {}", short(actual)),
        None => "is missing".to_string(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Equality with numbers compared by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A value as compact JSON, cut to 160 characters.
pub fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 160 {
        return text;
    }
    let cut: String = text.chars().take(157).collect();
    format!("{cut}...")
}

/// The expected side of a matcher, for reports.
pub fn describe(matcher: &Value) -> String {
    match as_matcher(matcher) {
        None => short(matcher),
        Some(("pluck", pointer)) => format!(
            "{} values = set {}",
            pointer.as_str().unwrap_or_default(),
            short(&matcher["set"])
        ),
        Some(("anyOf", options)) => format!(
            "any of [{}]",
            options
                .as_array()
                .into_iter()
                .flatten()
                .map(describe)
                .collect::<Vec<_>>()
                .join(" | ")
        ),
        Some(("exists", Value::Bool(true))) => "present".to_string(),
        Some(("exists", _)) => "absent".to_string(),
        Some(("not", inner)) => format!("not {}", describe(inner)),
        Some(("contains", inner)) => format!("contains {}", describe(inner)),
        Some(("type", name)) => format!("a {}", name.as_str().unwrap_or_default()),
        Some(("matches", re)) => format!("matching /{}/", re.as_str().unwrap_or_default()),
        Some(("min", n)) => format!(">= {n}"),
        Some(("max", n)) => format!("<= {n}"),
        Some((keyword, argument)) => format!("{keyword} {}", short(argument)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> Vars {
        [
            ("run".to_string(), json!("r1")),
            ("n".to_string(), json!(3)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn substitution_keeps_json_values_and_names_missing_variables() {
        assert_eq!(
            substitute(
                &json!({"id": "c${run}", "n": "${n}", "s": "n=${n}"}),
                &vars()
            )
            .unwrap(),
            json!({"id": "cr1", "n": 3, "s": "n=3"})
        );
        assert_eq!(
            substitute_str("$filter=x&t=$${title}", &vars()).unwrap(),
            "$filter=x&t=${title}"
        );
        assert!(substitute(&json!("${nope}"), &vars())
            .unwrap_err()
            .contains("${nope} is not set"));
    }

    #[test]
    fn matchers() {
        let ok = |m: Value, a: Value| check(&m, Some(&a)).is_ok();
        assert!(ok(json!(2), json!(2.0)));
        assert!(ok(json!({"anyOf": [401, 403]}), json!(403)));
        assert!(!ok(json!({"anyOf": [401, 403]}), json!(404)));
        assert!(ok(json!({"type": "string"}), json!("x")));
        assert!(ok(json!({"matches": "^1\\."}), json!("1.gcemu.a")));
        assert!(ok(json!({"length": 2}), json!([1, 2])));
        assert!(ok(json!({"contains": {"matches": "b"}}), json!(["a", "b"])));
        assert!(ok(
            json!({"contains": {"id": "c1"}}),
            json!([{"id": "c0"}, {"id": "c1", "x": 1}])
        ));
        assert!(ok(
            json!({"pluck": "/hitId", "set": ["b", "a"]}),
            json!([{"hitId": "a"}, {"hitId": "b"}])
        ));
        assert!(ok(json!({"equals": {"type": "x"}}), json!({"type": "x"})));
        assert!(check(&json!({"exists": false}), None).is_ok());
        assert_eq!(check(&json!("draft"), None).unwrap_err(), "is missing");
        assert_eq!(
            check(&json!("draft"), Some(&json!("ready"))).unwrap_err(),
            "is \"ready\""
        );
    }
}
