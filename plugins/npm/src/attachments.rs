//! `npm publish` sends one JSON document: the package's metadata, and under
//! `_attachments.<file>.data` the tarball, base64-encoded. A tarball may be hundreds of MiB, so the
//! document is read as it streams in: everything but those `data` strings is kept (it is small),
//! and each `data` string is decoded as it arrives into a sink, never held whole.

use base64::Engine as _;

/// Where the decoded bytes of one attachment go.
pub trait Sink {
    /// Starts the attachment called `file` (its key under `_attachments`).
    fn start(&mut self, file: &str) -> Result<(), String>;
    /// Decoded bytes of the current attachment.
    fn write(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// Ends the current attachment.
    fn end(&mut self) -> Result<(), String>;
}

/// A container the scanner is in.
#[derive(Debug)]
enum Frame {
    /// An object, with the key of the member being read (none before its first key).
    Object {
        key: Option<String>,
    },
    Array,
}

/// Where the scanner is within the document.
#[derive(Debug, PartialEq)]
enum State {
    /// Between tokens.
    Between,
    /// In a string that is a member's key, collecting it.
    Key { escaped: bool },
    /// In a string copied through.
    Text { escaped: bool },
    /// In an attachment's `data` string, decoding it.
    Data,
}

/// Copies a JSON document, fed in pieces, except the attachments' `data` strings, which it
/// decodes into a [`Sink`] (leaving `""` in their place).
pub struct Scanner<S: Sink> {
    sink: S,
    /// The document without the attachments' data.
    pub document: Vec<u8>,
    /// The most bytes [`Scanner::document`] may hold.
    limit: usize,
    stack: Vec<Frame>,
    state: State,
    key: Vec<u8>,
    /// Base64 characters not decoded yet (fewer than a quantum, or a partial batch).
    pending: Vec<u8>,
}

/// Base64 characters decoded at a time: a multiple of 4 (one quantum) giving 48 KiB.
const DECODE_BATCH: usize = 64 * 1024;

impl<S: Sink> Scanner<S> {
    /// A scanner keeping at most `limit` bytes of the document besides the attachments.
    pub fn new(sink: S, limit: usize) -> Self {
        Self {
            sink,
            document: Vec::new(),
            limit,
            stack: Vec::new(),
            state: State::Between,
            key: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The sink, once the document has been fed whole.
    pub fn finish(self) -> Result<(Vec<u8>, S), String> {
        if self.state != State::Between || !self.stack.is_empty() {
            return Err("the request body ended inside the JSON document".into());
        }
        Ok((self.document, self.sink))
    }

    /// Feeds the next piece of the document.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), String> {
        while !input.is_empty() {
            if self.state == State::Data {
                // Up to the closing quote, all base64: decode it in batches.
                let end = input.iter().position(|b| *b == b'"');
                let (data, rest) = input.split_at(end.unwrap_or(input.len()));
                self.pending.extend_from_slice(data);
                self.decode(false)?;
                input = rest;
                if end.is_some() {
                    self.decode(true)?;
                    self.sink.end()?;
                    self.keep(b"\"")?;
                    self.state = State::Between;
                    input = &input[1..];
                }
                continue;
            }
            let byte = input[0];
            input = &input[1..];
            self.step(byte)?;
        }
        Ok(())
    }

    /// One byte outside an attachment's data.
    fn step(&mut self, byte: u8) -> Result<(), String> {
        match self.state {
            State::Key { escaped } => {
                self.keep(&[byte])?;
                match (escaped, byte) {
                    (false, b'\\') => self.state = State::Key { escaped: true },
                    (false, b'"') => {
                        let key = String::from_utf8_lossy(&self.key).into_owned();
                        self.key.clear();
                        if let Some(Frame::Object { key: current }) = self.stack.last_mut() {
                            *current = Some(key);
                        }
                        self.state = State::Between;
                    }
                    _ => {
                        self.key.push(byte);
                        self.state = State::Key { escaped: false };
                    }
                }
            }
            State::Text { escaped } => {
                self.keep(&[byte])?;
                self.state = match (escaped, byte) {
                    (false, b'\\') => State::Text { escaped: true },
                    (false, b'"') => State::Between,
                    _ => State::Text { escaped: false },
                };
            }
            State::Between => {
                self.keep(&[byte])?;
                match byte {
                    b'{' => self.stack.push(Frame::Object { key: None }),
                    b'[' => self.stack.push(Frame::Array),
                    b'}' | b']' => {
                        self.stack.pop();
                    }
                    b',' => {
                        if let Some(Frame::Object { key }) = self.stack.last_mut() {
                            *key = None;
                        }
                    }
                    b'"' => self.string_starts()?,
                    _ => {}
                }
            }
            State::Data => unreachable!("handled by feed"),
        }
        Ok(())
    }

    /// A string starts (its quote kept): a key, an attachment's data, or other text.
    fn string_starts(&mut self) -> Result<(), String> {
        let expecting_key = matches!(self.stack.last(), Some(Frame::Object { key: None }));
        if expecting_key {
            self.state = State::Key { escaped: false };
            return Ok(());
        }
        if let Some(file) = self.attachment_data() {
            self.sink.start(&file)?;
            self.state = State::Data;
            return Ok(());
        }
        self.state = State::Text { escaped: false };
        Ok(())
    }

    /// The attachment's name when the value starting now is `_attachments.<file>.data` of the
    /// top-level object.
    fn attachment_data(&self) -> Option<String> {
        match self.stack.as_slice() {
            [
                Frame::Object { key: Some(top) },
                Frame::Object { key: Some(file) },
                Frame::Object { key: Some(field) },
            ] if top == "_attachments" && field == "data" => Some(file.clone()),
            _ => None,
        }
    }

    /// Decodes the pending base64: whole batches, or everything at the end of the string.
    fn decode(&mut self, last: bool) -> Result<(), String> {
        let take = if last {
            self.pending.len()
        } else {
            self.pending.len() / DECODE_BATCH * DECODE_BATCH
        };
        if take == 0 {
            return Ok(());
        }
        let batch: Vec<u8> = self.pending.drain(..take).collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&batch)
            .map_err(|e| format!("an attachment's data is not base64: {e}"))?;
        self.sink.write(&decoded)
    }

    fn keep(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.document.len() + bytes.len() > self.limit {
            return Err(format!(
                "the package document is longer than {} bytes without its attachments",
                self.limit
            ));
        }
        self.document.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that keeps what it is given.
    #[derive(Debug, Default)]
    struct Kept {
        files: Vec<(String, Vec<u8>)>,
        open: bool,
    }

    impl Sink for Kept {
        fn start(&mut self, file: &str) -> Result<(), String> {
            assert!(!self.open);
            self.open = true;
            self.files.push((file.to_owned(), Vec::new()));
            Ok(())
        }
        fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
            self.files.last_mut().unwrap().1.extend_from_slice(bytes);
            Ok(())
        }
        fn end(&mut self) -> Result<(), String> {
            self.open = false;
            Ok(())
        }
    }

    fn scan(document: &[u8], piece: usize) -> Result<(serde_json::Value, Kept), String> {
        let mut scanner = Scanner::new(Kept::default(), 1 << 20);
        for chunk in document.chunks(piece) {
            scanner.feed(chunk)?;
        }
        let (document, kept) = scanner.finish()?;
        Ok((serde_json::from_slice(&document).unwrap(), kept))
    }

    #[test]
    fn attachments_are_decoded_out_of_the_document_in_any_pieces() {
        let tarball: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let data = base64::engine::general_purpose::STANDARD.encode(&tarball);
        let document = serde_json::json!({
            "name": "@scope/demo",
            "versions": {"1.0.0": {"name": "@scope/demo", "description": "has \"data\": {\"x\"}",
                                   "data": "not an attachment"}},
            "_attachments": {"demo-1.0.0.tgz": {"content_type": "application/octet-stream",
                                                "data": data, "length": tarball.len()}},
        })
        .to_string();
        for piece in [1, 7, 4096, usize::MAX] {
            let (kept_document, kept) =
                scan(document.as_bytes(), piece.min(document.len())).unwrap();
            assert_eq!(kept.files.len(), 1);
            assert_eq!(kept.files[0].0, "demo-1.0.0.tgz");
            assert!(kept.files[0].1 == tarball, "piece {piece}");
            assert_eq!(kept_document["_attachments"]["demo-1.0.0.tgz"]["data"], "");
            assert_eq!(
                kept_document["_attachments"]["demo-1.0.0.tgz"]["length"],
                tarball.len()
            );
            assert_eq!(
                kept_document["versions"]["1.0.0"]["data"],
                "not an attachment"
            );
        }
    }

    #[test]
    fn broken_documents_and_data_are_errors() {
        assert!(scan(br#"{"name": "x""#, 3).is_err());
        let bad = br#"{"_attachments": {"a.tgz": {"data": "!!!!"}}}"#;
        assert!(scan(bad, 5).unwrap_err().contains("base64"));
        let mut scanner = Scanner::new(Kept::default(), 10);
        assert!(
            scanner
                .feed(br#"{"name": "too long for the limit"}"#)
                .is_err()
        );
    }
}
