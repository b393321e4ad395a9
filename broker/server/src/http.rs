//! The broker's HTTP endpoint for orchestration: `/healthz` (the process answers), `/readyz`
//! (registered with the controller and serving Kafka), `/metrics` (Prometheus).
//!
//! Deliberately minimal: GET only, one request per connection, bounded reads and a timeout,
//! so probes and scrapers work and nothing else can tie the endpoint up.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::broker::Broker;

const MAX_REQUEST_HEAD: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let broker = broker.clone();
        tokio::spawn(async move {
            if let Err(e) = tokio::time::timeout(IO_TIMEOUT, answer(stream, &broker))
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "http request timed out",
                    ))
                })
            {
                debug!(error = %e, "http request failed");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, broker: &Broker) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line =
        String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or_default()).to_string();
    let (status, content_type, body) = route(line.trim_end(), broker);
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn route(request_line: &str, broker: &Broker) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return ("405 Method Not Allowed", "text/plain", "only GET\n".into());
    }
    match path.split('?').next().unwrap_or("") {
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        // Ready once this broker is a registered, unfenced member and has applied the image
        // that says so: from then on it serves Kafka requests.
        "/readyz" if broker.cluster.image().is_live(broker.node_id()) => {
            ("200 OK", "text/plain", "ready\n".into())
        }
        "/readyz" => (
            "503 Service Unavailable",
            "text/plain",
            "not a registered cluster member yet\n".into(),
        ),
        "/metrics" => {
            let topics = broker.topics.all();
            let partitions = topics.iter().map(|t| t.partitions.len()).sum();
            (
                "200 OK",
                "text/plain; version=0.0.4",
                broker.metrics.render(topics.len(), partitions),
            )
        }
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}
