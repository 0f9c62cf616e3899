//! What a failed call means to the `cairn` binary. cairnd answers with one code per
//! kind of failure (a repository it may not read is PERMISSION_DENIED, a full disk
//! RESOURCE_EXHAUSTED); a failure on the way there (the daemon went away) comes from
//! the transport, which keeps the error underneath it. Telling the two apart by that,
//! not by the words of a message, is what lets the console reconnect for the one and
//! show the other.

use tonic::{Code, Status};

/// Whether the call failed on its way to or from cairnd (the connection broke, the
/// daemon is gone), rather than by cairnd's answer. tonic makes such a status from the
/// transport's error, UNAVAILABLE when it could not connect and UNKNOWN for a stream
/// that broke, and keeps that error as its source; an answer has no source.
pub fn connection_lost(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown)
        && std::error::Error::source(status).is_some()
}

/// A failed call as one line: cairnd's message, which names what to do, after what
/// kind of failure it is when the message alone would not say.
pub fn one_line(status: &Status) -> String {
    if connection_lost(status) {
        return format!("cairnd stopped answering: {}", status.message());
    }
    match status.code() {
        Code::PermissionDenied => format!("permission denied: {}", status.message()),
        _ => status.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_is_told_from_an_answer_of_the_daemon() {
        // The transport's failures carry the error under them; cairnd's answers
        // arrive as a code and a message only.
        let broken = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert!(connection_lost(&broken));
        let refused = Status::from_error(Box::new(tonic::ConnectError(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ))));
        assert_eq!(refused.code(), Code::Unavailable);
        assert!(connection_lost(&refused));
        assert!(one_line(&broken).starts_with("cairnd stopped answering"));
        let busy = Status::unavailable("cairnd is shutting down and starts no new runs");
        assert!(!connection_lost(&busy), "the daemon's own answer");
        assert_eq!(one_line(&busy), busy.message());
        let denied = Status::permission_denied("/srv/repo/config: Permission denied");
        assert!(!connection_lost(&denied));
        assert_eq!(
            one_line(&denied),
            "permission denied: /srv/repo/config: Permission denied"
        );
    }
}
