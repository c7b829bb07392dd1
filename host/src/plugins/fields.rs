//! The schemas of plugin-declared fields of remotes and distributions (`plugin-info.remote-fields`
//! and `distribution-fields`): parsed when a plugin is loaded (a schema that does not parse
//! refuses the plugin) and used by the REST API to validate what clients send.
//!
//! The schema language is a small subset of JSON Schema: an object schema whose `properties`
//! each have a `type` (`string`, `boolean`, `integer`, `number`, `array` with `items`, `object`
//! with optional `properties`), an optional `enum`, an optional `default`, for numbers an
//! optional `minimum` and `maximum`, and for strings an optional `pattern` (a regular expression
//! in Rust's `regex` syntax that a value must match somewhere, as JSON Schema's `pattern`: anchor
//! it with `^…$` for the whole value); the top-level `required` lists the fields a create must
//! give and an update may not clear. Anything else in a schema is ignored; an unknown `type` or
//! a pattern that does not compile makes the plugin fail to load.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// A parsed object schema: the declared fields.
#[derive(Debug, Default)]
pub struct Schema {
    properties: BTreeMap<String, Property>,
    /// Fields that must have a value (top level only).
    required: Vec<String>,
}

/// One declared field.
#[derive(Debug)]
struct Property {
    shape: Shape,
    allowed: Option<Vec<Value>>,
    default: Option<Value>,
    /// Bounds of a number, inclusive.
    minimum: Option<f64>,
    maximum: Option<f64>,
    /// What a string must match.
    pattern: Option<regex::Regex>,
}

/// The most memory one compiled `pattern` may take: a plugin's schema is untrusted input too.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug)]
enum Shape {
    String,
    Boolean,
    Integer,
    Number,
    Array(Box<Property>),
    /// An object, with its declared fields when the schema lists any.
    Object(Schema),
}

impl Schema {
    /// Parses a plugin's schema text (`{}` or empty: no fields).
    pub fn parse(text: &str) -> Result<Schema, String> {
        if text.trim().is_empty() {
            return Ok(Schema::default());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|error| format!("invalid JSON: {error}"))?;
        Self::from_value(&value)
    }

    fn from_value(value: &Value) -> Result<Schema, String> {
        let object = value.as_object().ok_or("a schema must be a JSON object")?;
        if let Some(kind) = object.get("type")
            && kind != "object"
        {
            return Err(format!("the top-level type must be \"object\", not {kind}"));
        }
        let mut properties = BTreeMap::new();
        if let Some(declared) = object.get("properties") {
            let declared = declared
                .as_object()
                .ok_or("`properties` must be an object")?;
            for (name, property) in declared {
                let property = Property::from_value(property)
                    .map_err(|error| format!("property {name:?}: {error}"))?;
                properties.insert(name.clone(), property);
            }
        }
        let required = match object.get("required") {
            None => Vec::new(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|name| {
                    name.as_str()
                        .filter(|name| properties.contains_key(*name))
                        .map(str::to_owned)
                        .ok_or_else(|| format!("`required` names {name}, not a declared property"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("`required` must be an array of property names".into()),
        };
        Ok(Schema {
            properties,
            required,
        })
    }

    /// The declared field names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.properties.keys().map(String::as_str)
    }

    /// Validates the declared fields present in `body` and merges them over `existing` (an
    /// update) or over the defaults (a create, `existing` none). Returns the object to store, or
    /// none when an update sets no declared field.
    pub fn extract(
        &self,
        body: &Map<String, Value>,
        existing: Option<&Map<String, Value>>,
    ) -> ApiResult<Option<Map<String, Value>>> {
        let mut extra = match existing {
            Some(existing) => existing.clone(),
            None => self
                .properties
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.default.clone()?)))
                .collect(),
        };
        let mut touched = existing.is_none();
        for (name, property) in &self.properties {
            let Some(value) = body.get(name) else {
                continue;
            };
            touched = true;
            if value.is_null() {
                match &property.default {
                    Some(default) => extra.insert(name.clone(), default.clone()),
                    None => extra.remove(name),
                };
                continue;
            }
            property
                .check(value)
                .map_err(|message| ApiError::field(name, message))?;
            extra.insert(name.clone(), value.clone());
        }
        if let Some(missing) = self.required.iter().find(|name| !extra.contains_key(*name)) {
            return Err(ApiError::field(missing, "This field is required."));
        }
        Ok(touched.then_some(extra))
    }
}

impl Property {
    fn from_value(value: &Value) -> Result<Property, String> {
        let object = value.as_object().ok_or("must be a JSON object")?;
        let shape = match object.get("type").and_then(Value::as_str) {
            Some("string") => Shape::String,
            Some("boolean") => Shape::Boolean,
            Some("integer") => Shape::Integer,
            Some("number") => Shape::Number,
            Some("array") => {
                let items = object
                    .get("items")
                    .ok_or("an array must declare its `items`")?;
                Shape::Array(Box::new(Property::from_value(items)?))
            }
            Some("object") => Shape::Object(Schema::from_value(value)?),
            Some(other) => return Err(format!("unsupported type {other:?}")),
            None => return Err("`type` is required".into()),
        };
        let allowed = match object.get("enum") {
            Some(Value::Array(values)) => Some(values.clone()),
            Some(_) => return Err("`enum` must be an array".into()),
            None => None,
        };
        let bound = |name: &str| match object.get(name) {
            None => Ok(None),
            Some(Value::Number(number)) if matches!(shape, Shape::Integer | Shape::Number) => {
                Ok(number.as_f64())
            }
            Some(_) => Err(format!("`{name}` must be a number, on a number")),
        };
        let (minimum, maximum) = (bound("minimum")?, bound("maximum")?);
        let pattern = match (object.get("pattern"), &shape) {
            (None, _) => None,
            (Some(Value::String(pattern)), Shape::String) => Some(
                regex::RegexBuilder::new(pattern)
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .build()
                    .map_err(|error| format!("`pattern` does not compile: {error}"))?,
            ),
            (Some(_), _) => return Err("`pattern` must be a string, on a string".into()),
        };
        let property = Property {
            shape,
            allowed,
            default: object.get("default").cloned(),
            minimum,
            maximum,
            pattern,
        };
        if let Some(default) = &property.default {
            property
                .check(default)
                .map_err(|message| format!("its default is invalid: {message}"))?;
        }
        Ok(property)
    }

    /// Why `value` does not fit, in the words a client reads.
    fn check(&self, value: &Value) -> Result<(), String> {
        let fits = match &self.shape {
            Shape::String => value.is_string(),
            Shape::Boolean => value.is_boolean(),
            Shape::Integer => value.is_i64() || value.is_u64(),
            Shape::Number => value.is_number(),
            Shape::Array(items) => {
                let Some(values) = value.as_array() else {
                    return Err("Expected a list.".into());
                };
                for (index, item) in values.iter().enumerate() {
                    items
                        .check(item)
                        .map_err(|message| format!("Item {index}: {message}"))?;
                }
                true
            }
            Shape::Object(schema) => {
                let Some(object) = value.as_object() else {
                    return Err("Expected an object.".into());
                };
                for (name, property) in &schema.properties {
                    if let Some(inner) = object.get(name).filter(|v| !v.is_null()) {
                        property
                            .check(inner)
                            .map_err(|message| format!("{name}: {message}"))?;
                    }
                }
                true
            }
        };
        if !fits {
            return Err(match self.shape {
                Shape::String => "Not a valid string.",
                Shape::Boolean => "Must be a valid boolean.",
                Shape::Integer => "A valid integer is required.",
                Shape::Number => "A valid number is required.",
                Shape::Array(_) | Shape::Object(_) => unreachable!("checked above"),
            }
            .into());
        }
        if let Some(number) = value.as_f64() {
            if let Some(minimum) = self.minimum.filter(|minimum| number < *minimum) {
                return Err(format!(
                    "Ensure this value is greater than or equal to {minimum}."
                ));
            }
            if let Some(maximum) = self.maximum.filter(|maximum| number > *maximum) {
                return Err(format!(
                    "Ensure this value is less than or equal to {maximum}."
                ));
            }
        }
        if let (Some(pattern), Some(text)) = (&self.pattern, value.as_str())
            && !pattern.is_match(text)
        {
            return Err(format!(
                "{value} does not have the form this field takes (pattern {}).",
                pattern.as_str()
            ));
        }
        if let Some(allowed) = &self.allowed
            && !allowed.contains(value)
        {
            let choices: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!(
                "{value} is not a valid choice ({}).",
                choices.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Schema;

    fn schema() -> Schema {
        Schema::parse(
            &json!({
                "type": "object",
                "properties": {
                    "includes": {"type": "array", "items": {"type": "string"}, "default": []},
                    "prereleases": {"type": "boolean", "default": false},
                    "keep": {"type": "integer", "minimum": 0, "maximum": 10},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                }
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn create_takes_defaults_and_checks_types() {
        let body = json!({"keep": 3, "name": "not ours"});
        let extra = schema()
            .extract(body.as_object().unwrap(), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::Value::Object(extra),
            json!({"includes": [], "prereleases": false, "keep": 3})
        );
        for (field, bad) in [
            ("includes", json!("requests")),
            ("includes", json!([1])),
            ("prereleases", json!("yes")),
            ("keep", json!(1.5)),
            ("keep", json!(-1)),
            ("keep", json!(11)),
            ("mode", json!("c")),
        ] {
            let body = json!({ field: bad });
            let error = schema()
                .extract(body.as_object().unwrap(), None)
                .unwrap_err();
            assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn a_pattern_refuses_strings_that_do_not_match_it() {
        let schema = Schema::parse(
            &json!({
                "type": "object",
                "properties": {
                    "names": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
                }
            })
            .to_string(),
        )
        .unwrap();
        let fine = json!({"names": ["abc", "d"]});
        assert!(schema.extract(fine.as_object().unwrap(), None).is_ok());
        let bad = json!({"names": ["abc", "not ok!"]});
        let error = schema.extract(bad.as_object().unwrap(), None).unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        let body = format!("{error:?}");
        assert!(body.contains("names") && body.contains("Item 1"), "{body}");
        // A schema whose pattern does not compile, or sits on a number, is refused.
        for property in [
            json!({"type": "string", "pattern": "(unclosed"}),
            json!({"type": "integer", "pattern": "^1$"}),
        ] {
            let text = json!({"type": "object", "properties": {"p": property}}).to_string();
            assert!(Schema::parse(&text).is_err(), "{text}");
        }
    }

    #[test]
    fn updates_touch_only_what_they_name() {
        let existing = json!({"includes": ["a"], "prereleases": true});
        let existing = existing.as_object().unwrap();
        let untouched = schema()
            .extract(json!({"name": "x"}).as_object().unwrap(), Some(existing))
            .unwrap();
        assert!(untouched.is_none());
        let updated = schema()
            .extract(
                json!({"prereleases": null, "mode": "b"})
                    .as_object()
                    .unwrap(),
                Some(existing),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::Value::Object(updated),
            json!({"includes": ["a"], "prereleases": false, "mode": "b"})
        );
    }

    #[test]
    fn required_fields_must_be_given_and_stay() {
        let schema = Schema::parse(
            r#"{"required":["upstream_name"],"properties":{"upstream_name":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}}}}"#,
        )
        .unwrap();
        let error = schema
            .extract(json!({"tags": ["v1"]}).as_object().unwrap(), None)
            .unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(format!("{error:?}").contains("upstream_name"), "{error:?}");
        let created = schema
            .extract(json!({"upstream_name": "app"}).as_object().unwrap(), None)
            .unwrap()
            .unwrap();
        let cleared = json!({"upstream_name": null});
        assert!(
            schema
                .extract(cleared.as_object().unwrap(), Some(&created))
                .is_err()
        );
        assert!(Schema::parse(r#"{"required":["nope"],"properties":{}}"#).is_err());
    }

    #[test]
    fn unusable_schemas_are_refused() {
        assert!(Schema::parse("{}").is_ok());
        assert!(Schema::parse("[]").is_err());
        assert!(Schema::parse(r#"{"properties":{"a":{"type":"date"}}}"#).is_err());
        assert!(Schema::parse(r#"{"properties":{"a":{"type":"string","minimum":1}}}"#).is_err());
        assert!(Schema::parse(r#"{"properties":{"a":{"type":"array"}}}"#).is_err());
        assert!(Schema::parse(r#"{"properties":{"a":{"type":"integer","default":"x"}}}"#).is_err());
    }
}
