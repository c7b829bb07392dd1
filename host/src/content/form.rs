//! Reading form (multipart) text fields without holding more than their limit: a field is read
//! chunk by chunk and refused as soon as it passes its limit, so a client cannot make the server
//! buffer a 400 MiB "text" field to find out it is too long. Used by the plugin routes and by the
//! REST API's multipart endpoints.

use axum::extract::multipart::Field;

/// Why a text field was not read.
#[derive(Debug)]
pub enum TextError {
    /// It is longer than the limit it was read with (the rest was not read).
    TooLong,
    /// The body broke off, or the field is not UTF-8.
    Unreadable(String),
}

/// The text of `field`, if it is at most `max_bytes` long.
pub async fn bounded_text(field: &mut Field<'_>, max_bytes: usize) -> Result<String, TextError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|error| TextError::Unreadable(error.body_text()))?
    {
        if bytes.len() + chunk.len() > max_bytes {
            return Err(TextError::TooLong);
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| TextError::Unreadable("not UTF-8 text".to_owned()))
}
