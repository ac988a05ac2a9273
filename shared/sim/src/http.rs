//! Loopback HTTP/1.1 plumbing shared by the simulators: accept loop, body collection, dropped
//! connections and shutdown. Each simulator supplies a [`Handler`] that turns a whole request
//! into a [`Reply`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Largest request body read unless the simulator says otherwise (Emarsys documents 10 MB).
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

/// A request with its body read in full.
pub struct SimRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// `None` when the body could not be read or exceeded the server's limit.
    pub body: Option<Bytes>,
}

/// What to do with a request.
pub enum Reply {
    Respond(Response<Full<Bytes>>),
    /// Close the connection without a response.
    Drop,
}

pub type Handler =
    Arc<dyn Fn(SimRequest) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// A running server; stops when dropped.
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Open connections watch this flag and close; the accept loop is aborted outright.
        let _ = self.shutdown.send(true);
        self.accept.abort();
    }
}

/// Binds `127.0.0.1:0` and serves `handler` until the handle is dropped; bodies over
/// [`DEFAULT_MAX_BODY`] arrive as `None`.
pub async fn spawn(handler: Handler) -> std::io::Result<ServerHandle> {
    spawn_with_body_limit(handler, DEFAULT_MAX_BODY).await
}

/// [`spawn`] with another body limit (an ESP that takes bigger uploads).
pub async fn spawn_with_body_limit(
    handler: Handler,
    max_body: usize,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (shutdown, stop) = watch::channel(false);
    let accept = tokio::spawn(accept_loop(listener, handler, stop, max_body));
    Ok(ServerHandle {
        addr,
        shutdown,
        accept,
    })
}

async fn accept_loop(
    listener: TcpListener,
    handler: Handler,
    stop: watch::Receiver<bool>,
    max_body: usize,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "simulator accept failed");
                continue;
            }
        };
        tokio::spawn(serve_connection(
            stream,
            handler.clone(),
            stop.clone(),
            max_body,
        ));
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    handler: Handler,
    mut stop: watch::Receiver<bool>,
    max_body: usize,
) {
    let drop_now = Arc::new(Notify::new());
    let drop_signal = drop_now.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let handler = handler.clone();
        let drop_signal = drop_signal.clone();
        async move {
            let request = read_request(req, max_body).await;
            match handler(request).await {
                Reply::Respond(response) => Ok::<_, Infallible>(response),
                Reply::Drop => {
                    // The connection task drops the socket on this signal; never answer.
                    drop_signal.notify_one();
                    std::future::pending().await
                }
            }
        }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "simulator connection ended with an error");
            }
        }
        () = drop_now.notified() => {}
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}

async fn read_request(req: Request<Incoming>, max_body: usize) -> SimRequest {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, max_body)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes());
    SimRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    }
}
