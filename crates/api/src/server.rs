//! The HTTP/1.1 server: accepts connections, answers read-cache hits itself (`hit_path`) and
//! hands every other request to the router, then drains on shutdown.
//!
//! Why hyper directly and not `axum::serve`: a hit answered before the router still paid for
//! `axum::serve`'s per-request conversions (request body boxing, the service adaptor), a
//! measurable share of a request that is otherwise a hash lookup (BENCHMARKS.md "Reads").
//! Only HTTP/1.1 is spoken, as before in practice: browsers and load balancers speak it to an
//! upstream, and `axum::serve`'s HTTP/2 needed prior knowledge, which none of them use.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::{BoxError, Router};
use bytes::Bytes;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

use crate::hit_path;
use crate::sendfile::SendfileStream;
use crate::state::AppState;

/// How long accepting pauses after an error that is not about one connection (out of file
/// descriptors, say): retrying at once would spin.
const ACCEPT_ERROR_PAUSE_MS: u64 = 1_000;

/// Serves `state`'s API on `listener` until `shutdown` completes; then stops accepting and
/// returns once every open connection has finished its request in flight. Bounding that wait
/// is the caller's business. At most `limits.connections_max` connections are open at once:
/// at the bound, accepting waits until one closes (new clients queue in the listen backlog).
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) {
    let app = App::new(state.clone(), crate::router(state.clone()));
    let limits = &state.inner.config.limits;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    // A client may send its request and close its sending side (`nc -N`, some health
    // checkers); it still reads the answer. Without this hyper drops such a connection
    // unanswered when the request is not done by the time it sees the end of input.
    http.half_close(true);
    let open_connections = Arc::new(Semaphore::new(limits.connections_max.min(Semaphore::MAX_PERMITS)));
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&open_connections).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else {
            break; // the semaphore is never closed; nothing to serve with if it were
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                pause_after_accept_error(error).await;
                continue;
            }
        };
        // Responses are written whole; Nagle's delay would only hold back pipelined ones.
        let _ = stream.set_nodelay(true);
        let service = ConnectionService { app: app.clone(), remote };
        let stream = TokioIo::new(SendfileStream::new(stream));
        let connection = connections.watch(http.serve_connection(stream, service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    connections.shutdown().await;
}

async fn pause_after_accept_error(error: io::Error) {
    let about_one_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    );
    if !about_one_connection {
        tracing::error!(%error, "cannot accept connections; pausing {ACCEPT_ERROR_PAUSE_MS} ms");
        tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
    }
}

/// The whole API as one service: read-cache hits answered by `hit_path`, everything else by
/// the router. `serve` runs it; tests call it directly.
#[derive(Clone)]
pub struct App {
    state: AppState,
    router: Router,
}

/// What `App` returns: a hit at once, or the router's future.
pub type AppFuture = Either<Ready<Result<Response, Infallible>>, RouteFuture<Infallible>>;

impl App {
    /// `router`: `crate::router(state)`, with any layers the caller adds.
    pub fn new(state: AppState, router: Router) -> Self {
        Self { state, router }
    }

    /// Answers `request`; `remote` is the peer's address for the router's extractors.
    fn answer<B>(&self, mut request: Request<B>, remote: Option<SocketAddr>) -> AppFuture
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if let Some(response) = hit_path::answer(&self.state, &request) {
            return Either::Left(ready(Ok(response)));
        }
        if let Some(remote) = remote {
            request.extensions_mut().insert(ConnectInfo(remote));
        }
        // `Router` is always ready, and a clone is a reference-count bump.
        Either::Right(self.router.clone().call(request))
    }
}

impl<B> Service<Request<B>> for App
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AppFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> AppFuture {
        self.answer(request, None)
    }
}

/// One connection's service: the app, with the peer's address.
struct ConnectionService {
    app: App,
    remote: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = AppFuture;

    fn call(&self, request: Request<Incoming>) -> AppFuture {
        self.app.answer(request, Some(self.remote))
    }
}
