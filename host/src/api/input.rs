//! Typed request inputs. A resource reads a create or update body into one input type, which is
//! also the request schema of the API document ([`Input`]). A field of the wrong type is a 400 on
//! that field with Django REST framework's message; what a value must satisfy beyond its type
//! (a URL's scheme, a number's range) the resource checks on the typed value.
//!
//! Fields are read leniently, as Pulp's serializers read them: numbers and flags may come as
//! strings (`"8"`, `"true"`). With `#[serde(default, deserialize_with = "nullable")]` a field is
//! `None` when absent and `Some(None)` when null, which an update needs to tell "leave it" from
//! "clear it".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_json::{Number, Value};

use super::support::Fields;
use crate::error::{ApiError, ApiResult};

/// A request input: what the body of a create or update is read into.
pub trait Input: DeserializeOwned + utoipa::ToSchema {
    /// The fields a create (and a `PUT`) must give; an update (`PATCH`) may give any.
    const REQUIRED: &'static [&'static str];
}

impl Fields {
    /// The body read into `T`; a field of the wrong type is a 400 naming it.
    pub fn parse<T: DeserializeOwned>(&self) -> ApiResult<T> {
        serde_path_to_error::deserialize(Value::Object(self.0.clone())).map_err(|error| {
            let field = match error.path().iter().next() {
                Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
                _ => "non_field_errors".to_owned(),
            };
            ApiError::field(&field, error.into_inner().to_string())
        })
    }
}

/// A field value as the API accepts it, with Django REST framework's message when it is not one.
pub trait Lenient: Sized {
    /// The value, or why it is not one.
    fn read(value: Value) -> Result<Self, &'static str>;
}

impl Lenient for String {
    fn read(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::String(text) => Ok(text),
            _ => Err("Not a valid string."),
        }
    }
}

impl Lenient for bool {
    fn read(value: Value) -> Result<Self, &'static str> {
        match value {
            Value::Bool(flag) => Ok(flag),
            Value::String(text) if text == "true" || text == "false" => Ok(text == "true"),
            _ => Err("Must be a valid boolean."),
        }
    }
}

/// A number given as a JSON number (read by `from_json`) or as its text.
fn number<T: std::str::FromStr>(value: Value, from_json: fn(&Number) -> Option<T>) -> Option<T> {
    match value {
        Value::Number(number) => from_json(&number),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

impl Lenient for i64 {
    fn read(value: Value) -> Result<Self, &'static str> {
        number(value, Number::as_i64).ok_or("A valid integer is required.")
    }
}

impl Lenient for f64 {
    fn read(value: Value) -> Result<Self, &'static str> {
        number(value, Number::as_f64).ok_or("A valid number is required.")
    }
}

impl Lenient for Value {
    fn read(value: Value) -> Result<Self, &'static str> {
        Ok(value)
    }
}

/// `pulp_labels`.
impl Lenient for Vec<String> {
    fn read(value: Value) -> Result<Self, &'static str> {
        serde_json::from_value(value).map_err(|_| "Expected a list of strings.")
    }
}

impl Lenient for BTreeMap<String, String> {
    fn read(value: Value) -> Result<Self, &'static str> {
        serde_json::from_value(value).map_err(|_| "Labels must be an object of strings.")
    }
}

/// `deserialize_with` of an optional field: absent (with `#[serde(default)]`) or null is `None`.
pub fn optional<'de, D: Deserializer<'de>, T: Lenient>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => T::read(value).map(Some).map_err(D::Error::custom),
    }
}

/// `deserialize_with` of a field an update may clear: absent (with `#[serde(default)]`) is
/// `None`, null is `Some(None)`.
pub fn nullable<'de, D: Deserializer<'de>, T: Lenient>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    optional(deserializer).map(Some)
}

/// A field a create must give (`creating`), or an update gives: its non-blank text, or none when
/// an update leaves it alone.
pub fn required(
    creating: bool,
    name: &str,
    value: Option<Option<String>>,
) -> ApiResult<Option<String>> {
    match value {
        None if !creating => Ok(None),
        None | Some(None) => Err(ApiError::field(name, "This field is required.")),
        Some(Some(text)) if text.trim().is_empty() => {
            Err(ApiError::field(name, "This field may not be blank."))
        }
        Some(Some(text)) => Ok(Some(text)),
    }
}

/// An optional integer that must lie within `min..=max`.
pub fn within(name: &str, value: Option<i64>, min: i64, max: i64) -> ApiResult<Option<i64>> {
    match value {
        Some(value) if !(min..=max).contains(&value) => Err(ApiError::field(
            name,
            format!("Ensure this value is between {min} and {max}."),
        )),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "nullable")]
        count: Option<Option<i64>>,
        #[serde(default, deserialize_with = "optional")]
        flag: Option<bool>,
    }

    fn parse(body: Value) -> ApiResult<Sample> {
        let Value::Object(map) = body else {
            unreachable!()
        };
        Fields(map).parse()
    }

    #[test]
    fn absent_null_and_given_are_told_apart() {
        assert_eq!(parse(json!({})).unwrap().count, None);
        assert_eq!(parse(json!({"count": null})).unwrap().count, Some(None));
        assert_eq!(parse(json!({"count": "8"})).unwrap().count, Some(Some(8)));
        assert_eq!(parse(json!({"flag": "true"})).unwrap().flag, Some(true));
    }

    #[test]
    fn a_wrong_type_is_an_error_on_its_field() {
        let error = parse(json!({"flag": true, "count": 1.5})).unwrap_err();
        let shown = format!("{error:?}");
        assert!(
            shown.contains("count") && shown.contains("A valid integer is required."),
            "{shown}"
        );
    }
}
