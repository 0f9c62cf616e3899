//! Uploading a staged pack to S3 as one PUT whose body streams from the staged file,
//! so an upload holds a piece of the pack in memory, never all of it: memory stays
//! bounded by the number of connections, not by the pack size.
//!
//! opendal signs the request (a presigned PUT, so no hand-made SigV4); the body
//! goes out over reqwest, which opendal uses itself. Retries are ours here, with
//! the same backoff and jitter as the rest of the S3 backend, each one logged.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opendal::Operator;

/// Bytes read from the staged file per piece of the body.
const PIECE: usize = 256 * 1024;
/// How long a presigned request stays valid: far longer than any attempt takes.
const SIGNATURE_VALID: Duration = Duration::from_secs(60 * 60);
/// Time allowed for an attempt: a floor, plus the body at a slow 1 MiB/s.
const ATTEMPT_FLOOR: Duration = Duration::from_secs(120);

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum PutFailure {
    /// Worth another attempt: a timeout, a reset, a 5xx, 429 or SlowDown.
    Transient(String),
    /// The endpoint refused who we are (403): not worth retrying.
    Denied(String),
    /// Anything else the endpoint refused (a 4xx): retrying would not help.
    Refused(String),
}

/// The HTTP client every streamed upload of a backend shares (its connections are
/// kept and reused).
pub(crate) fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .build()
}

/// One attempt: signs a PUT of `name` and sends `len` bytes of `file` as its body.
pub(crate) async fn put_file(
    op: &Operator,
    client: &reqwest::Client,
    name: &str,
    file: Arc<File>,
    len: u64,
) -> Result<(), PutFailure> {
    let signed = op
        .presign_write(name, SIGNATURE_VALID)
        .await
        .map_err(|e| PutFailure::Refused(format!("signing the upload: {e}")))?;
    let mut request = client
        .put(signed.uri().to_string())
        .timeout(ATTEMPT_FLOOR + Duration::from_secs(len / (1024 * 1024)))
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(body(file, len)));
    for (header, value) in signed.header() {
        request = request.header(header.as_str(), value.as_bytes());
    }
    let response = request
        .send()
        .await
        .map_err(|e| PutFailure::Transient(error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // The error document says what (SlowDown, AccessDenied, NoSuchBucket...).
    let said = response.text().await.unwrap_or_default();
    let code = xml_field(&said, "Code").unwrap_or_default();
    let reason = match xml_field(&said, "Message") {
        Some(message) => format!("{status} {code}: {message}"),
        None => format!("{status} {code}"),
    };
    Err(
        if status.is_server_error() || status.as_u16() == 429 || code == "SlowDown" {
            PutFailure::Transient(reason)
        } else if status.as_u16() == 403 {
            PutFailure::Denied(reason)
        } else {
            PutFailure::Refused(reason)
        },
    )
}

/// The body: the file read piece by piece as hyper asks for it. A piece comes from
/// the page cache (the pack was just written), so reading it here does not hold up
/// the runtime.
fn body(
    file: Arc<File>,
    len: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(0u64, move |offset| {
        let file = Arc::clone(&file);
        async move {
            if offset >= len {
                return None;
            }
            let want = usize::try_from(len - offset).map_or(PIECE, |left| left.min(PIECE));
            let mut piece = vec![0u8; want];
            let piece = match file.read_exact_at(&mut piece, offset) {
                Ok(()) => Ok(Bytes::from(piece)),
                Err(e) => Err(e),
            };
            let next = if piece.is_ok() {
                offset + want as u64
            } else {
                len
            };
            Some((piece, next))
        }
    })
}

/// An error and its causes, on one line (reqwest's own text is only the outermost).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The text of the first `<field>` element of an S3 error document.
fn xml_field(document: &str, field: &str) -> Option<String> {
    let open = format!("<{field}>");
    let start = document.find(&open)? + open.len();
    let end = document[start..].find(&format!("</{field}>"))? + start;
    Some(document[start..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn an_s3_error_document_gives_its_code_and_message() {
        let document = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        assert_eq!(xml_field(document, "Code").as_deref(), Some("SlowDown"));
        assert_eq!(
            xml_field(document, "Message").as_deref(),
            Some("Please reduce your request rate.")
        );
        assert_eq!(xml_field("not xml", "Code"), None);
    }

    #[test]
    fn the_body_is_the_file_in_pieces() {
        let mut file = tempfile::tempfile().unwrap();
        let content: Vec<u8> = (0..(PIECE * 2 + 17)).map(|i| (i % 251) as u8).collect();
        std::io::Write::write_all(&mut file, &content).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pieces: Vec<Bytes> = runtime.block_on(
            body(Arc::new(file), content.len() as u64)
                .map(|piece| piece.unwrap())
                .collect(),
        );
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.len() <= PIECE));
        assert_eq!(pieces.concat(), content);
    }
}
