//! The HTTP server every Drover process runs, with the limits `axum::serve` lacks: a client
//! that sends its headers or its body too slowly (or lies in `Content-Length`) is cut off, and
//! past `max_connections` a new connection is answered 503 at once instead of holding a file
//! descriptor. So a few hundred idle or half-sent requests cannot take an API down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connection limits, as the servers' settings give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLimits {
    /// Most time a client may take to send a request's headers; also how long an idle
    /// keep-alive connection is kept.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Most time a client may take to send a request's whole body.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// What a request body that took longer than `body_read_timeout` reads as.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?} (body_read_timeout)")]
pub struct BodyTimeout(pub Duration);

/// Whether reading a body failed because it took longer than `body_read_timeout`.
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The whole answer to a connection over the limit.
fn refusal() -> Vec<u8> {
    let body = r#"{"error":"too many connections; the server's max_connections is reached"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Connections being refused at once, at most; past it, a connection is closed unanswered (a
/// flood must not hold descriptors through its refusals either).
const MAX_REFUSING: usize = 256;

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests under way finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let body_timeout = limits.body_read_timeout;
    let app = app.layer(axum::middleware::from_fn(move |r: Request, n: Next| {
        time_body(r, n, body_timeout)
    }));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let refused_answer: Arc<[u8]> = refusal().into();
    // Refusals are logged once a second with their count, not one line each.
    let mut refused_since_log = 0u64;
    let mut last_refusal_log: Option<std::time::Instant> = None;
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: say so and keep serving the others.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused_since_log += 1;
            if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(%peer, refused = refused_since_log, max = limits.max_connections, "connections refused: max_connections reached");
                refused_since_log = 0;
                last_refusal_log = Some(std::time::Instant::now());
            }
            if let Ok(refusing) = refusing.clone().try_acquire_owned() {
                let answer = refused_answer.clone();
                tokio::spawn(async move {
                    refuse(stream, &answer).await;
                    drop(refusing);
                });
            }
            continue;
        };
        stream.set_nodelay(true).ok();
        let service = TowerToHyperService::new(app.clone());
        let Some(acceptor) = tls.clone() else {
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                drop(slot);
            });
            continue;
        };
        // The handshake has the request head's deadline: a client that connects and stays
        // silent holds a slot no longer than one that sends half a request.
        let (watcher, http, handshake) =
            (graceful.watcher(), http.clone(), limits.header_read_timeout);
        tokio::spawn(async move {
            match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let connection =
                        watcher.watch(http.serve_connection(TokioIo::new(tls), service));
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers 503 on a connection over the limit. The request head is read first (briefly), as
/// clients take an answer that comes before their request for a broken connection.
async fn refuse(mut stream: tokio::net::TcpStream, answer: &[u8]) {
    use tokio::io::AsyncReadExt;
    let answer = async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        let read_head = async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(1), read_head)
            .await
            .ok();
        stream.write_all(answer).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(Duration::from_secs(2), answer)
        .await
        .ok();
}

/// Gives the request body a deadline: a client that stops sending (or promised more bytes than
/// it sends) gets an error from whoever reads the body, instead of holding the request forever.
async fn time_body(request: Request, next: Next, timeout: Duration) -> Response {
    let (parts, body) = request.into_parts();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut chunks = body.into_data_stream();
    let mut expired = false;
    // Kept across polls: it holds the timer registration that wakes us at the deadline.
    let mut sleep = Box::pin(tokio::time::sleep_until(deadline));
    let timed = futures::stream::poll_fn(move |cx| {
        if expired {
            return std::task::Poll::Ready(None);
        }
        match chunks.poll_next_unpin(cx) {
            std::task::Poll::Pending => match sleep.as_mut().poll(cx) {
                std::task::Poll::Ready(()) => {
                    expired = true;
                    std::task::Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(timeout)))))
                }
                std::task::Poll::Pending => std::task::Poll::Pending,
            },
            ready => ready,
        }
    });
    next.run(Request::from_parts(
        parts,
        axum::body::Body::from_stream(timed),
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let answer = String::from_utf8(refusal()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].as_str().unwrap().contains("max_connections"));
    }
}
