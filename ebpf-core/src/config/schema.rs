//! The configuration's schema, derived from the config types themselves
//! (`schemars`): every key with its type, unit, default, bounds and
//! description. It is the one place a key is declared: validation checks
//! values against it, the C ABI hands it to hosts (`otel_ebpf_config_keys`),
//! the Go receiver's parity test and the README's key table are checked
//! against it.
//!
//! What a field declares, and where it ends up:
//!
//! | on the field | schema | checked here as |
//! |---|---|---|
//! | its `///` doc comment | `description` | (documentation) |
//! | its type (`u32`, `bool`, `Vec<String>`, an enum) | `type`, `enum`/`oneOf`, integer bounds | a value of another type, a number outside the type |
//! | `#[schemars(range(min = A, max = B))]` | `minimum`, `maximum` | a number outside them |
//! | `#[schemars(length(max = N))]` on a list | `maxItems` | a longer list |
//! | `#[schemars(inner(range(min = A)))]` on a list | its items' `minimum` | an item outside them |
//! | `#[schemars(extend("x-unit" = "ms"))]` | `x-unit` | (named in messages; `ms` keys are durations in the collector) |
//! | `#[serde(deny_unknown_fields)]` on the struct | `additionalProperties: false` | an unknown key, with the known ones |
//! | its value in the struct's `Default` | (`otel_ebpf_config_defaults`) | |
//!
//! What a schema cannot say (a power of two, sums across lists, globs and
//! patterns that must compile) is checked in code, by `Config::check` and
//! the `check` of each section, into the same list of problems.
//!
//! Only the keywords the config types produce are understood: `type`,
//! `enum`, `const`, `oneOf`/`anyOf`, `minimum`, `maximum`, `maxItems`,
//! `items`, `properties`, `additionalProperties`, `required` (subschemas
//! are inlined, so there is no `$ref`). A small walker is enough for them;
//! a full JSON Schema validator would add dozens of crates to every host.

use once_cell::sync::Lazy;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Config, Problems};

/// The JSON Schema of [`Config`], subschemas inlined.
pub static SCHEMA: Lazy<Value> = Lazy::new(|| {
    SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<Config>()
        .to_value()
});

/// One leaf key of the configuration, as `otel_ebpf_config_keys` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    /// Dotted path: `batch.timeout_ms`.
    pub key: String,
    /// `integer`, `boolean`, `string`, `string or null`, `list of integers`,
    /// `list of strings`, `list of objects`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `bytes`, `ms`, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub default: Value,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Value>,
    /// Most entries of a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_items: Option<Value>,
    /// Bounds of each entry of a list of numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_minimum: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_maximum: Option<Value>,
    /// The accepted values of an enumeration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

/// Every leaf key (objects are walked into; lists are leaves), sorted by key.
pub fn keys() -> Vec<KeyInfo> {
    let defaults = serde_json::to_value(Config::default()).expect("the default config serializes");
    let mut out = Vec::new();
    collect_keys(&SCHEMA, "", &defaults, &mut out);
    out
}

fn collect_keys(schema: &Value, prefix: &str, defaults: &Value, out: &mut Vec<KeyInfo>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    for (name, prop) in properties {
        let key = join(prefix, name);
        let default = defaults.get(name).cloned().unwrap_or(Value::Null);
        if prop.get("properties").is_some() {
            collect_keys(prop, &key, &default, out);
            continue;
        }
        let (minimum, maximum) = bounds(prop);
        let (item_minimum, item_maximum) = prop.get("items").map(bounds).unwrap_or_default();
        out.push(KeyInfo {
            key,
            kind: kind(prop),
            unit: prop.get("x-unit").and_then(Value::as_str).map(str::to_string),
            default,
            description: prop.get("description").and_then(Value::as_str).map(one_line).unwrap_or_default(),
            minimum,
            maximum,
            max_items: prop.get("maxItems").cloned(),
            item_minimum,
            item_maximum,
            values: enum_values(prop),
        });
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Doc comments wrap; descriptions are one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => {
            // An enumeration: the types of its values.
            let mut ts: Vec<&str> = enum_values(schema).unwrap_or_default().iter().map(value_type).collect();
            ts.dedup();
            ts
        }
    }
}

fn kind(schema: &Value) -> String {
    let ts = types(schema);
    if ts == ["array"] {
        let item = schema.get("items").map(types).unwrap_or_default();
        return match item.as_slice() {
            ["integer"] => "list of integers".into(),
            ["string"] => "list of strings".into(),
            ["object"] => "list of objects".into(),
            _ => "list".into(),
        };
    }
    ts.join(" or ")
}

/// The values of an enumeration: `enum`, or the `const` of each `oneOf`
/// alternative (how documented enum variants come out).
fn enum_values(schema: &Value) -> Option<Vec<Value>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.clone());
    }
    let alternatives = schema.get("oneOf").or_else(|| schema.get("anyOf"))?.as_array()?;
    alternatives.iter().map(|a| a.get("const").cloned()).collect()
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    let actual = value_type(v);
    t == actual || (t == "number" && actual == "integer")
}

fn type_phrase(t: &str) -> &str {
    match t {
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "string" => "a string",
        "array" => "a list",
        "object" => "a map of keys",
        other => other,
    }
}

/// The value as the user wrote it, cut short.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    const MAX: usize = 80;
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Problems of `value` (a whole configuration) against [`SCHEMA`]. What
/// cannot be deserialized (a value of the wrong type, an unknown key, an
/// object missing a required key) is removed from `value` once reported, so
/// that the rest deserializes, with defaults in place of what was removed,
/// and gets its own checks too.
pub fn check(value: &mut Value, problems: &mut Problems) {
    check_value(&SCHEMA, value, "", problems);
}

/// False when `value` must be removed.
fn check_value(schema: &Value, value: &mut Value, key: &str, problems: &mut Problems) -> bool {
    let Some(s) = schema.as_object() else { return true };
    let ts = types(schema);
    if let Some(values) = enum_values(schema) {
        if !values.contains(value) {
            let list = values.iter().map(shown).collect::<Vec<_>>().join(", ");
            problems.push(key, format!("must be one of {list}, not {}", shown(value)));
            return false;
        }
        return true;
    }
    if !ts.is_empty() && !ts.iter().any(|t| type_matches(t, value)) {
        let expected = ts.iter().map(|t| type_phrase(t)).collect::<Vec<_>>().join(" or ");
        problems.push(key, format!("must be {expected}, not {}", shown(value)));
        return false;
    }
    match value {
        Value::Number(_) => check_bounds(schema, value, key, problems),
        Value::Array(items) => {
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    problems.push(key, format!("has {} entries: at most {max} are allowed", items.len()));
                    // Its entries are not looked at: there may be millions.
                    // Kept, so that the count stays the user's own.
                    return true;
                }
            }
            if let Some(item_schema) = s.get("items") {
                let mut i = 0;
                items.retain_mut(|item| {
                    let keep = check_value(item_schema, item, &format!("{key}[{i}]"), problems);
                    i += 1;
                    keep
                });
            }
        }
        Value::Object(map) => return check_object(s, map, key, problems),
        _ => {}
    }
    true
}

fn check_object(s: &Map<String, Value>, map: &mut Map<String, Value>, key: &str, problems: &mut Problems) -> bool {
    let properties = s.get("properties").and_then(Value::as_object);
    let closed = s.get("additionalProperties") == Some(&Value::Bool(false));
    map.retain(|name, v| {
        let child = join(key, name);
        match properties.and_then(|p| p.get(name)) {
            Some(prop) => check_value(prop, v, &child, problems),
            None if closed => {
                let known = properties.map(|p| p.keys().map(String::as_str).collect::<Vec<_>>().join(", "));
                problems.push(child, format!("unknown key (known here: {})", known.unwrap_or_default()));
                false
            }
            None => true,
        }
    });
    let mut complete = true;
    for name in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(name) {
            problems.push(join(key, name), "is required");
            complete = false;
        }
    }
    complete
}

/// A number's `minimum` and `maximum`, or those of its Rust type (schemars
/// names the type in `format` but states no maximum for 32-bit integers).
fn bounds(schema: &Value) -> (Option<Value>, Option<Value>) {
    let implied = match schema.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(Value::from(u8::MAX)),
        Some("uint16") => Some(Value::from(u16::MAX)),
        Some("uint32") => Some(Value::from(u32::MAX)),
        _ => None,
    };
    (schema.get("minimum").cloned(), schema.get("maximum").cloned().or(implied))
}

fn check_bounds(schema: &Value, value: &Value, key: &str, problems: &mut Problems) {
    let unit = schema.get("x-unit").and_then(Value::as_str).map(|u| format!(" {u}")).unwrap_or_default();
    let (min, max) = bounds(schema);
    let (min, max) = (min.as_ref(), max.as_ref());
    let below = min.is_some_and(|m| compare(value, m) == Some(std::cmp::Ordering::Less));
    let above = max.is_some_and(|m| compare(value, m) == Some(std::cmp::Ordering::Greater));
    if !below && !above {
        return;
    }
    let range = match (min, max) {
        (Some(min), Some(max)) => format!("between {min}{unit} and {max}{unit}"),
        (Some(min), None) => format!("at least {min}{unit}"),
        (None, Some(max)) => format!("at most {max}{unit}"),
        (None, None) => unreachable!("a bound was crossed"),
    };
    problems.push(key, format!("must be {range}, not {value}{unit}"));
}

/// Exact for integers of any size JSON numbers hold here; floats otherwise.
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let int = |v: &Value| v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
