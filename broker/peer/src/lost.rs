//! Telling a peer that is gone from one that is slow or out of reach, from how a call failed.

use std::error::Error;

/// Whether a call failed because the connection to the peer closed while it waited, or because
/// the peer refused a new one: what a process that died looks like from the cluster port. A
/// timeout, a cut route or an error the peer answered with proves nothing and is not this.
pub fn connection_lost(status: &tonic::Status) -> bool {
    match status.code() {
        // tonic's "transport error": the HTTP/2 connection broke under the call.
        tonic::Code::Unknown => status
            .source()
            .is_some_and(|e| e.is::<tonic::transport::Error>()),
        tonic::Code::Unavailable => {
            let mut cause = status.source();
            while let Some(e) = cause {
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                {
                    return true;
                }
                cause = e.source();
            }
            false
        }
        _ => false,
    }
}
