//! Rendering index files of a publication, streamed: entries go to the host in chunks through a
//! [`crate::publication::FileWriter`], so an index of any size is never held whole.

use crate::PluginError;
use crate::publication::FileWriter;

/// A JSON array of objects with string fields (`[{"path":"a","sha256":"…"},…]`), written one entry
/// at a time, in canonical form (fields in the order given, no whitespace) plus a newline.
///
/// ```no_run
/// # fn demo() -> Result<(), granary_sdk::PluginError> {
/// let mut index = granary_sdk::index::JsonArray::new("index.json");
/// index.entry([("path", "a.txt"), ("sha256", "ab12")])?;
/// index.finish()?; // index.json: [{"path":"a.txt","sha256":"ab12"}]
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "call `finish` to close the array"]
pub struct JsonArray {
    writer: FileWriter,
    entries: u64,
}

impl JsonArray {
    /// An empty array that will be written to the publication file `relative_path`.
    pub fn new(relative_path: &str) -> Self {
        Self {
            writer: FileWriter::new(relative_path),
            entries: 0,
        }
    }

    /// Appends one object.
    pub fn entry<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), PluginError> {
        let separator = if self.entries == 0 { "[" } else { "," };
        self.writer.append(separator.as_bytes())?;
        self.writer
            .append(crate::json::string_object(fields).as_bytes())?;
        self.entries += 1;
        Ok(())
    }

    /// Closes the array and writes the rest of the file; returns how many entries it has.
    pub fn finish(mut self) -> Result<u64, PluginError> {
        let end: &[u8] = if self.entries == 0 { b"[]\n" } else { b"]\n" };
        self.writer.append(end)?;
        self.writer.finish()?;
        Ok(self.entries)
    }
}

/// One line of a `sha256sum`-style listing: `<sha256>  <path>`, without the newline.
///
/// ```
/// assert_eq!(granary_sdk::index::checksum_line("ab12", "a.txt"), "ab12  a.txt");
/// ```
pub fn checksum_line(sha256: &str, relative_path: &str) -> String {
    format!("{sha256}  {relative_path}")
}
