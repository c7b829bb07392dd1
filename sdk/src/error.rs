//! The one error type of the SDK.

use std::fmt;

use crate::wit::granary::plugin::types as raw;

/// An error a plugin returns from an export, or the host returned from an import.
///
/// The message must be something a user can act on (`PULP_MANIFEST line 3: expected 3 fields`):
/// the host shows it on the failed task or in the 400 response. [`PluginError::field`] also names
/// the request or remote field at fault, so the host can report it as a field-level error.
///
/// Errors the host returns from imports come back unchanged, so `?` passes the host's message
/// through to the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    message: String,
    field: Option<String>,
}

impl PluginError {
    /// An error about the operation as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    /// An error about one field of the request or of the remote, e.g. `relative_path`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The message for humans.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field at fault, if any.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PluginError {}

impl From<raw::PluginError> for PluginError {
    fn from(error: raw::PluginError) -> Self {
        Self {
            message: error.message,
            field: error.field,
        }
    }
}

impl From<PluginError> for raw::PluginError {
    fn from(error: PluginError) -> Self {
        Self {
            message: error.message,
            field: error.field,
        }
    }
}

/// Lets `?` turn the errors of [`std::io`]-based code (archive readers over
/// [`crate::artifacts::Reader`]) into plugin errors. A host error that travelled through
/// `std::io` comes back as it was.
impl From<std::io::Error> for PluginError {
    fn from(error: std::io::Error) -> Self {
        let message = error.to_string();
        match error
            .into_inner()
            .map(|inner| inner.downcast::<PluginError>())
        {
            Some(Ok(plugin_error)) => *plugin_error,
            _ => PluginError::new(message),
        }
    }
}

impl From<PluginError> for std::io::Error {
    fn from(error: PluginError) -> Self {
        std::io::Error::other(error)
    }
}
