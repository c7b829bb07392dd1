//! Canonical JSON for natural keys and metadata, without a JSON crate.
//!
//! The host deduplicates units by their natural key as a string, so a plugin must write it the same
//! way every time: keys in a fixed order, no whitespace, strings escaped as `serde_json` does.

/// A JSON object of string fields, in the order given, without whitespace.
///
/// ```
/// let key = granary_sdk::json::string_object([("relative_path", "a\"b"), ("sha256", "ab")]);
/// assert_eq!(key, r#"{"relative_path":"a\"b","sha256":"ab"}"#);
/// ```
pub fn string_object<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, name);
        out.push(':');
        push_string(&mut out, value);
    }
    out.push('}');
    out
}

/// Appends `value` to `out` as a quoted, escaped JSON string.
///
/// ```
/// let mut out = String::new();
/// granary_sdk::json::push_string(&mut out, "tab\there é");
/// assert_eq!(out, r#""tab\there é""#);
/// ```
pub fn push_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
