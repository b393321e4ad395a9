//! A Kafka listener: accepts connections (completing TLS where the listener has it) and runs
//! each one's request loop.
//!
//! Kafka processes one request per connection at a time and answers in order; so does this
//! loop. Responses are buffered and flushed when no further request is already buffered, so a
//! pipelining client gets its answers in few writes. A frame that cannot be read closes only
//! its own connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use krait_protocol::frame::{LENGTH_PREFIX, frame_length};
use krait_tls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::context::Connection;
use crate::dispatch::{Outcome, dispatch};
use crate::listeners::ListenerSpec;

const IO_BUFFER: usize = 64 * 1024;
/// Frames are read in steps of at most this much, so a client that announces a large frame
/// and sends nothing does not make the broker allocate the whole frame up front.
const READ_STEP: usize = 1024 * 1024;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on a listener until `shutdown` resolves, then closes them all.
pub async fn serve(
    listener: TcpListener,
    spec: Arc<ListenerSpec>,
    tls: Option<TlsAcceptor>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    let spec = spec.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        if let Err(e) = accept(stream, peer, spec, tls, &broker).await {
                            debug!(%peer, error = %e, "connection closed");
                        }
                    });
                }
                Err(e) => warn!(error = %e, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    info!(listener = %spec.name, open = connections.len(), "closing client connections");
    connections.shutdown().await;
}

/// Completes the TLS handshake where the listener has one, fixes the principal a client
/// certificate names, and serves the connection's requests.
async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    spec: Arc<ListenerSpec>,
    tls: Option<TlsAcceptor>,
    broker: &Broker,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(acceptor) = tls else {
        let (read, write) = stream.into_split();
        return serve_connection(read, write, Connection::accepted(peer, spec), broker).await;
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        // A connection closed before any hello is a port check (a kubelet's TCP probe), not a
        // failed client.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            debug!(%peer, listener = %spec.name, "closed before the TLS handshake");
            return Ok(());
        }
        Ok(Err(e)) => {
            broker.metrics.authentication_failed();
            info!(%peer, listener = %spec.name, error = %e, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            broker.metrics.authentication_failed();
            info!(%peer, listener = %spec.name, "TLS handshake timed out");
            return Ok(());
        }
    };
    let mut connection = Connection::accepted(peer, spec.clone());
    // On SSL listeners the certificate is the identity; on SASL_SSL, SASL decides.
    if !spec.protocol.sasl()
        && let Some(certificate) = krait_tls::peer_certificate(&stream)
    {
        match broker.security.certificate_principal(&certificate) {
            Ok(principal) => connection = connection.with_principal(principal),
            Err(e) => {
                broker.metrics.authentication_failed();
                info!(%peer, listener = %spec.name, error = %e, "no principal for the client certificate");
                return Ok(());
            }
        }
    }
    let (read, write) = tokio::io::split(stream);
    serve_connection(read, write, connection, broker).await
}

async fn serve_connection<R, W>(
    read: R,
    write: W,
    connection: Connection,
    broker: &Broker,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    broker.metrics.connection_opened();
    let result = requests(read, write, &connection, broker).await;
    broker.metrics.connection_closed();
    result
}

async fn requests<R, W>(
    read: R,
    write: W,
    connection: &Connection,
    broker: &Broker,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(IO_BUFFER, read);
    let mut writer = BufWriter::with_capacity(IO_BUFFER, write);
    loop {
        let Some(frame) = read_frame(&mut reader, broker.config.max_request_bytes).await? else {
            return Ok(());
        };
        let close = match dispatch(broker, connection, frame).await {
            Outcome::Respond(bytes) => {
                writer.write_all(&bytes).await?;
                false
            }
            Outcome::NoResponse => false,
            Outcome::RespondAndClose(bytes) => {
                writer.write_all(&bytes).await?;
                true
            }
            Outcome::Close => true,
        };
        if close || reader.buffer().is_empty() {
            writer.flush().await?;
        }
        if close {
            writer.shutdown().await.ok();
            return Ok(());
        }
    }
}

/// Reads one frame; `None` at a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Bytes>> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = frame_length(prefix, max).map_err(|e| {
        warn!(error = %e, "unreadable frame, closing connection");
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    })?;
    let mut frame = BytesMut::with_capacity(len.min(READ_STEP));
    while frame.len() < len {
        frame.reserve((len - frame.len()).min(READ_STEP));
        let want = len - frame.len();
        let n = (&mut *reader)
            .take(want as u64)
            .read_buf(&mut frame)
            .await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("frame truncated after {} of {len} bytes", frame.len()),
            ));
        }
    }
    Ok(Some(frame.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_read_whole_and_eof_between_frames_is_clean() {
        let mut input: &[u8] = &[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let frame = read_frame(&mut input, 100).await.unwrap().unwrap();
        assert_eq!(&frame[..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(read_frame(&mut input, 100).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_and_oversized_frames_are_errors() {
        let mut truncated: &[u8] = &[0, 0, 0, 9, 1, 2, 3];
        assert!(read_frame(&mut truncated, 100).await.is_err());
        let mut oversized: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut oversized, 100).await.is_err());
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut negative, 100).await.is_err());
    }
}
