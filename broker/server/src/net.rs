//! A Kafka listener: accepts connections (completing TLS where the listener has it) and runs
//! each one's request loop.
//!
//! Kafka processes one request per connection at a time and answers in order; so does this
//! loop. Responses are buffered and flushed when no further request is already buffered, so a
//! pipelining client gets its answers in few writes. A frame that cannot be read closes only
//! its own connection.
//!
//! What a connection may hold is bounded ([`Admission`]): connections in all and per address
//! are counted on accept, a connection idle past `connections.max.idle.ms` is closed, a frame
//! that has begun must arrive whole within the read timeout, a response must be taken by the
//! client within it too (a client that stops reading is closed), and the bytes of frames being
//! read or handled come from one budget shared by all connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use krait_protocol::frame::{FixedHeader, LENGTH_PREFIX, frame_length};
use krait_protocol::response_frame::ResponseFrame;
use krait_tls::TlsAcceptor;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
    BufWriter,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::admission::{Admission, Admitted};
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
/// How long the listener pauses after `accept` fails (out of file descriptors, say) before it
/// tries again, instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections on a listener until `shutdown` resolves, then closes them all.
pub async fn serve(
    listener: TcpListener,
    spec: Arc<ListenerSpec>,
    tls: Option<TlsAcceptor>,
    broker: Arc<Broker>,
    admission: Arc<Admission>,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match admission.admit(peer.ip()) {
                    Ok(admitted) => {
                        let broker = broker.clone();
                        let spec = spec.clone();
                        let tls = tls.clone();
                        let admission = admission.clone();
                        connections.spawn(async move {
                            let limits = Limits { admission: &admission, _admitted: admitted };
                            if let Err(e) = accept(stream, peer, spec, tls, &broker, limits).await {
                                debug!(%peer, error = %e, "connection closed");
                            }
                        });
                    }
                    Err(why) => {
                        broker.metrics.connection_refused(&spec.name);
                        debug!(%peer, listener = %spec.name, %why, "connection refused");
                        drop(stream);
                    }
                },
                Err(e) => {
                    warn!(listener = %spec.name, error = %e, "accept failed; pausing before the next");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    info!(listener = %spec.name, open = connections.len(), "closing client connections");
    connections.shutdown().await;
}

/// What one connection holds of the broker's limits: its place among the open connections
/// (given back when it drops) and the shared budgets.
struct Limits<'a> {
    admission: &'a Admission,
    _admitted: Admitted,
}

/// Completes the TLS handshake where the listener has one, fixes the principal a client
/// certificate names, and serves the connection's requests.
async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    spec: Arc<ListenerSpec>,
    tls: Option<TlsAcceptor>,
    broker: &Broker,
    limits: Limits<'_>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(acceptor) = tls else {
        let (read, write) = stream.into_split();
        return serve_connection(
            read,
            write,
            Connection::accepted(peer, spec),
            broker,
            &limits,
        )
        .await;
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
    serve_connection(read, write, connection, broker, &limits).await
}

async fn serve_connection<R, W>(
    read: R,
    write: W,
    connection: Connection,
    broker: &Broker,
    limits: &Limits<'_>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _open = broker.metrics.connection_opened(&connection.listener.name);
    let result = requests(read, write, &connection, broker, limits.admission).await;
    if result
        .as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
    {
        broker
            .metrics
            .connection_timed_out(&connection.listener.name);
    }
    result
}

async fn requests<R, W>(
    read: R,
    write: W,
    connection: &Connection,
    broker: &Broker,
    admission: &Admission,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(IO_BUFFER, read);
    let mut writer = BufWriter::with_capacity(IO_BUFFER, write);
    let max = broker.config.max_request_bytes();
    let stall = admission.read_timeout;
    loop {
        // The frame's bytes stay counted against the budget until its answer is written.
        let Some((frame, _held)) = next_frame(&mut reader, max, admission).await? else {
            return Ok(());
        };
        let started = Instant::now();
        let api = FixedHeader::peek(&frame).map(|h| h.api_key).ok();
        let close = match dispatch(broker, connection, frame).await {
            Outcome::Respond(response) => {
                write_frame(&mut writer, &response, stall).await?;
                false
            }
            Outcome::NoResponse => false,
            Outcome::RespondAndClose(response) => {
                write_frame(&mut writer, &response, stall).await?;
                true
            }
            Outcome::Close => true,
        };
        if let Some(api) = api {
            broker.metrics.answered(api, started.elapsed());
        }
        if close || reader.buffer().is_empty() {
            flush_within(&mut writer, stall).await?;
        }
        if close {
            writer.shutdown().await.ok();
            return Ok(());
        }
    }
}

/// Writes a response's buffers in order: the small ones gather in the writer's buffer, a large
/// one (a Fetch response's records) goes to the socket from where the log read it. A client
/// that takes none of it for the read timeout is given up on (`TimedOut`): what its response
/// holds (`fetch.memory.max.bytes`) must not be held by a client that stopped reading.
async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut BufWriter<W>,
    response: &ResponseFrame,
    stall: Duration,
) -> std::io::Result<()> {
    for part in response.parts() {
        let mut rest = &part[..];
        while !rest.is_empty() {
            match tokio::time::timeout(stall, writer.write(rest)).await {
                Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => rest = &rest[n..],
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(stalled(stall)),
            }
        }
    }
    Ok(())
}

async fn flush_within<W: AsyncWrite + Unpin>(
    writer: &mut BufWriter<W>,
    stall: Duration,
) -> std::io::Result<()> {
    tokio::time::timeout(stall, writer.flush())
        .await
        .map_err(|_| stalled(stall))?
}

fn stalled(stall: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the client read nothing of its response for {stall:?} (request.read.timeout.ms)"),
    )
}

/// Waits up to the idle timeout for the next request to begin, then up to the read timeout for
/// its whole frame. `None` at a clean end of stream between frames; a `TimedOut` error for a
/// connection that idled or trickled.
async fn next_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    admission: &Admission,
) -> std::io::Result<Option<(Bytes, OwnedSemaphorePermit)>> {
    match tokio::time::timeout(admission.idle_timeout, reader.fill_buf()).await {
        Ok(Ok([])) => return Ok(None),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "idle for {:?} (connections.max.idle.ms)",
                    admission.idle_timeout
                ),
            ));
        }
    }
    match tokio::time::timeout(admission.read_timeout, read_frame(reader, max, admission)).await {
        Ok(frame) => frame,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "request frame not complete within {:?}",
                admission.read_timeout
            ),
        )),
    }
}

/// Reads one frame, counting its bytes against the budget as they arrive; `None` at a clean end
/// of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    admission: &Admission,
) -> std::io::Result<Option<(Bytes, OwnedSemaphorePermit)>> {
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
    let mut held = admission.reserve(len.min(READ_STEP)).await;
    let mut frame = BytesMut::with_capacity(len.min(READ_STEP));
    while frame.len() < len {
        let step_end = frame.len() + (len - frame.len()).min(READ_STEP);
        if held.num_permits() < step_end {
            held.merge(admission.reserve(step_end - held.num_permits()).await);
        }
        frame.reserve(step_end - frame.len());
        while frame.len() < step_end {
            let want = step_end - frame.len();
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
    }
    Ok(Some((frame.freeze(), held)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use clap::Parser;

    fn admission(args: &[&str]) -> Arc<Admission> {
        let config = BrokerConfig::try_parse_from(
            ["krait-broker", "--max-request-bytes", "1024"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap();
        Admission::new(&config)
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_eof_between_frames_is_clean() {
        let budget = admission(&[]);
        let mut input: &[u8] = &[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let (frame, held) = read_frame(&mut input, 100, &budget).await.unwrap().unwrap();
        assert_eq!(&frame[..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(held.num_permits(), 8, "the frame's bytes are counted");
        drop(held);
        assert!(
            read_frame(&mut input, 100, &budget)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn truncated_and_oversized_frames_are_errors() {
        let budget = admission(&[]);
        let mut truncated: &[u8] = &[0, 0, 0, 9, 1, 2, 3];
        assert!(read_frame(&mut truncated, 100, &budget).await.is_err());
        let mut oversized: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut oversized, 100, &budget).await.is_err());
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut negative, 100, &budget).await.is_err());
        assert_eq!(
            budget.available_bytes(),
            16 * 1024 * 1024,
            "nothing stays held: the default budget's share is all free"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_and_a_trickled_frame_time_out() {
        let limits = admission(&[
            "--connections-max-idle-ms",
            "100",
            "--request-read-timeout-ms",
            "200",
        ]);
        let (client, server) = tokio::io::duplex(64);
        let mut reader = BufReader::new(server);
        let idle = next_frame(&mut reader, 100, &limits).await.unwrap_err();
        assert_eq!(idle.kind(), std::io::ErrorKind::TimedOut, "{idle}");

        // A frame begun and then trickled: the idle timer no longer applies, the read timeout
        // does, however steadily bytes arrive.
        let (mut client, server) = (client, reader.into_inner());
        let trickle = tokio::spawn(async move {
            client.write_all(&[0, 0, 0, 50]).await.unwrap();
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if client.write_all(&[1]).await.is_err() {
                    return;
                }
            }
        });
        let mut reader = BufReader::new(server);
        let started = tokio::time::Instant::now();
        let slow = next_frame(&mut reader, 100, &limits).await.unwrap_err();
        assert_eq!(slow.kind(), std::io::ErrorKind::TimedOut, "{slow}");
        assert!(started.elapsed() < Duration::from_millis(900));
        drop(reader);
        trickle.await.unwrap();
    }

    fn large_response() -> ResponseFrame {
        ResponseFrame::from(Bytes::from(vec![3u8; 256 * 1024]))
    }

    #[tokio::test]
    async fn a_client_that_reads_nothing_of_its_response_is_given_up_on() {
        let (_client, server) = tokio::io::duplex(4096);
        let mut writer = BufWriter::with_capacity(IO_BUFFER, server);
        let started = tokio::time::Instant::now();
        let stalled = write_frame(&mut writer, &large_response(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(stalled.kind(), std::io::ErrorKind::TimedOut, "{stalled}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_slow_client_that_keeps_reading_gets_its_whole_response() {
        let (mut client, server) = tokio::io::duplex(4096);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while got.len() < 256 * 1024 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let n = client.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        let mut writer = BufWriter::with_capacity(IO_BUFFER, server);
        // The whole response takes 64 reads 20 ms apart, over 1.2 s; the 1 s timeout is on
        // progress, not on the whole response.
        let response = large_response();
        write_frame(&mut writer, &response, Duration::from_secs(1))
            .await
            .unwrap();
        flush_within(&mut writer, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(reading.await.unwrap(), response.to_bytes());
    }
}
