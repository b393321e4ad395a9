//! The HTTP endpoint for orchestration that the broker and the operator share: probes
//! (`/healthz`, `/readyz`) and Prometheus scrapes (`/metrics`). What each path answers is the
//! caller's `route`; this crate only speaks enough HTTP/1.1 for kubelets and scrapers.
//!
//! Deliberately minimal: GET only, one request per connection, a bounded request head and a
//! timeout, so nothing can tie the endpoint up.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

const MAX_REQUEST_HEAD: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const TEXT: &str = "text/plain; charset=utf-8";
/// The Prometheus text exposition format.
pub const METRICS: &str = "text/plain; version=0.0.4";

/// One answer: status line, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn ok(body: impl Into<String>) -> Self {
        Self::text("200 OK", body)
    }

    pub fn unavailable(body: impl Into<String>) -> Self {
        Self::text("503 Service Unavailable", body)
    }

    pub fn not_found() -> Self {
        Self::text("404 Not Found", "not found\n")
    }

    /// A Prometheus exposition.
    pub fn metrics(body: String) -> Self {
        Self {
            status: "200 OK",
            content_type: METRICS,
            body,
        }
    }

    fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }
}

/// Serves GET requests with `route(path)` (the path without its query) until the task is
/// aborted or dropped.
pub async fn serve<F>(listener: TcpListener, route: F)
where
    F: Fn(&str) -> Answer + Send + Sync + 'static,
{
    let route = Arc::new(route);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let route = route.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(IO_TIMEOUT, answer(stream, route.as_ref())).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(error = %e, "http request failed"),
                Err(_) => debug!("http request timed out"),
            }
        });
    }
}

async fn answer(mut stream: TcpStream, route: &impl Fn(&str) -> Answer) -> std::io::Result<()> {
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
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let answer = if method == "GET" {
        route(path.split('?').next().unwrap_or(""))
    } else {
        Answer::text("405 Method Not Allowed", "GET only\n")
    };
    let response = format!(
        "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        answer.status,
        answer.content_type,
        answer.body.len(),
        answer.body
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn request(addr: std::net::SocketAddr, line: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("{line}\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn get_requests_are_routed_by_path_and_others_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, |path| match path {
            "/healthz" => Answer::ok("ok\n"),
            "/metrics" => Answer::metrics("up 1\n".into()),
            _ => Answer::not_found(),
        }));
        let health = request(addr, "GET /healthz?verbose=1 HTTP/1.1").await;
        assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        let metrics = request(addr, "GET /metrics HTTP/1.1").await;
        assert!(
            metrics.contains("content-type: text/plain; version=0.0.4"),
            "{metrics}"
        );
        assert!(metrics.contains("content-length: 5\r\n"), "{metrics}");
        assert!(
            request(addr, "GET /nope HTTP/1.1")
                .await
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            request(addr, "POST /healthz HTTP/1.1")
                .await
                .starts_with("HTTP/1.1 405")
        );
        server.abort();
    }
}
