//! Outbound HTTP, during `sync`, and during `handle` when the distribution has a remote
//! (pull-through).
//!
//! The host restricts requests to the origin of the remote in scope and applies the remote's
//! TLS, proxy, authentication and timeout settings; a request elsewhere fails with the host's
//! error. Bodies are streamed: read them in chunks with [`Response::read_chunk`] or line by line
//! with [`Response::lines`], so a plugin never holds a large upstream file in memory.

use crate::PluginError;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::http as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::http as raw;

/// How many bytes [`Response::read_chunk`] asks the host for at a time (64 KiB).
pub const CHUNK_SIZE: u32 = 64 * 1024;

/// The longest line [`Lines`] accepts (1 MiB), so a body without newlines cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// GETs `url` (absolute, on the remote's origin or one of its `allowed_origins`) with extra
/// request `headers`. Files on other origins are not fetched here: declare their URLs and the
/// host fetches them.
///
/// Any status is a successful response: check [`Response::status`] or [`Response::is_success`].
/// The error case is a request the host refused or could not complete.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, PluginError> {
    let response = raw::get(url, &owned(headers))?;
    Ok(Response::new(response))
}

/// GETs a page a pull-through route serves from: `Ok(None)` when the upstream does not have it
/// (404 or 410), the response when it answers 200, and an error naming the status and the URL
/// for any other answer (an upstream in trouble, which a route may answer with what it keeps).
pub fn get_found(url: &str, headers: &[(&str, &str)]) -> Result<Option<Response>, PluginError> {
    let response = get(url, headers)?;
    match response.status() {
        200 => Ok(Some(response)),
        404 | 410 => Ok(None),
        status => Err(PluginError::new(format!(
            "the upstream answered {status} for {url}"
        ))),
    }
}

/// HEADs `url` (absolute, on the remote's origin or one of its `allowed_origins`); the response
/// has an empty body.
pub fn head(url: &str, headers: &[(&str, &str)]) -> Result<Response, PluginError> {
    let response = raw::head(url, &owned(headers))?;
    Ok(Response::new(response))
}

fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// A response whose body is read from the host in chunks.
pub struct Response {
    inner: raw::Response,
    status: u16,
    finished: bool,
}

impl Response {
    fn new(inner: raw::Response) -> Self {
        let status = inner.status();
        Self {
            inner,
            status,
            finished: false,
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response headers, names in lower case.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.inner.headers()
    }

    /// The value of the first header called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Reads the next chunk of the body (at most [`CHUNK_SIZE`] bytes); `None` at the end.
    pub fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, PluginError> {
        if self.finished {
            return Ok(None);
        }
        let chunk = self.inner.read(CHUNK_SIZE)?;
        if chunk.is_empty() {
            self.finished = true;
            return Ok(None);
        }
        Ok(Some(chunk))
    }

    /// Reads the whole body, failing if it is longer than `max_bytes`. Meant for small documents
    /// (a JSON index, a checksum file); stream anything that can be large with [`Response::lines`]
    /// or [`Response::read_chunk`].
    pub fn read_to_end(mut self, max_bytes: usize) -> Result<Vec<u8>, PluginError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.read_chunk()? {
            if body.len() + chunk.len() > max_bytes {
                return Err(PluginError::new(format!(
                    "the response body is larger than {max_bytes} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The body as UTF-8 lines, without their `\n` or `\r\n`, read [`CHUNK_SIZE`] bytes at a time:
    /// only the current line and one chunk are held in memory. A last line without a newline is
    /// returned too.
    ///
    /// Yields an error (and then ends) when reading fails, when a line is not valid UTF-8, or when
    /// a line is longer than [`MAX_LINE_BYTES`].
    pub fn lines(self) -> Lines {
        Lines {
            reader: LineReader::new(self),
        }
    }
}

/// Iterator over the lines of a response body; see [`Response::lines`].
pub struct Lines {
    reader: LineReader<Response>,
}

impl Lines {
    /// The 1-based number of the last line returned (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.reader.line
    }
}

impl Iterator for Lines {
    type Item = Result<String, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next()
    }
}

/// Where [`LineReader`] gets its bytes; a seam so the line splitting is testable natively.
trait ChunkSource {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, PluginError>;
}

impl ChunkSource for Response {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, PluginError> {
        self.read_chunk()
    }
}

struct LineReader<S> {
    source: S,
    buf: Vec<u8>,
    /// Where the current (unreturned) line starts in `buf`.
    start: usize,
    /// How far past `start` a newline has already been looked for.
    scanned: usize,
    line: u64,
    /// The body has been read to its end.
    eof: bool,
    /// An error was returned; the iterator is over.
    failed: bool,
}

impl<S: ChunkSource> LineReader<S> {
    fn new(source: S) -> Self {
        Self {
            source,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            line: 0,
            eof: false,
            failed: false,
        }
    }

    fn take(&mut self, end: usize, next_start: usize) -> Result<String, PluginError> {
        let mut bytes = &self.buf[self.start..end];
        if let [rest @ .., b'\r'] = bytes {
            bytes = rest;
        }
        self.line += 1;
        let line = String::from_utf8(bytes.to_vec());
        self.start = next_start;
        self.scanned = 0;
        line.map_err(|_| {
            self.fail(format!(
                "line {} of the response is not valid UTF-8",
                self.line
            ))
        })
    }

    fn fail(&mut self, message: String) -> PluginError {
        self.failed = true;
        self.buf = Vec::new();
        self.start = 0;
        PluginError::new(message)
    }
}

impl<S: ChunkSource> Iterator for LineReader<S> {
    type Item = Result<String, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            let unscanned = &self.buf[self.start + self.scanned..];
            if let Some(i) = unscanned.iter().position(|&b| b == b'\n') {
                let end = self.start + self.scanned + i;
                return Some(self.take(end, end + 1));
            }
            if self.eof {
                if self.start == self.buf.len() {
                    return None;
                }
                // The body ended without a final newline.
                let end = self.buf.len();
                return Some(self.take(end, end));
            }
            self.scanned = self.buf.len() - self.start;
            if self.scanned > MAX_LINE_BYTES {
                let line = self.line + 1;
                return Some(Err(self.fail(format!(
                    "line {line} of the response is longer than {MAX_LINE_BYTES} bytes"
                ))));
            }
            // Drop the lines already returned before reading more.
            self.buf.drain(..self.start);
            self.start = 0;
            match self.source.next_chunk() {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => self.eof = true,
                Err(error) => {
                    self.fail(String::new());
                    return Some(Err(error));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    impl ChunkSource for VecDeque<Result<&'static [u8], PluginError>> {
        fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, PluginError> {
            self.pop_front()
                .transpose()
                .map(|chunk| chunk.map(<[u8]>::to_vec))
        }
    }

    fn lines(chunks: &[&'static [u8]]) -> Vec<Result<String, PluginError>> {
        LineReader::new(chunks.iter().map(|&c| Ok(c)).collect::<VecDeque<_>>()).collect()
    }

    fn ok(lines: &[&str]) -> Vec<Result<String, PluginError>> {
        lines.iter().map(|&l| Ok(l.to_owned())).collect()
    }

    #[test]
    fn lines_may_span_chunks_and_end_without_a_newline() {
        assert_eq!(
            lines(&[b"a,1\nb,", b"2\r\n\nc", b",3"]),
            ok(&["a,1", "b,2", "", "c,3"])
        );
    }

    #[test]
    fn a_final_newline_does_not_add_an_empty_line() {
        assert_eq!(lines(&[b"a\n", b"b\n"]), ok(&["a", "b"]));
        assert_eq!(lines(&[]), ok(&[]));
    }

    #[test]
    fn invalid_utf8_names_the_line_and_ends_the_iteration() {
        let got = lines(&[b"fine\n\xff\nnever reached\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1].as_ref().unwrap_err().message(),
            "line 2 of the response is not valid UTF-8"
        );
    }

    #[test]
    fn a_read_error_is_returned_once() {
        let source: VecDeque<_> = [Ok(&b"a\nb"[..]), Err(PluginError::new("connection reset"))]
            .into_iter()
            .collect();
        let got: Vec<_> = LineReader::new(source).collect();
        assert_eq!(
            got,
            vec![
                Ok("a".to_owned()),
                Err(PluginError::new("connection reset"))
            ]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        static BIG: [u8; 600 * 1024] = [b'x'; 600 * 1024];
        let got = lines(&[&BIG, &BIG, &BIG]);
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .as_ref()
                .unwrap_err()
                .message()
                .contains("longer than")
        );
    }
}
