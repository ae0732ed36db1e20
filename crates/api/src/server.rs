//! The listeners: HTTP/1.1 connections, plain or over TLS, with a connection limit and
//! header-read and idle timeouts, shut down gracefully.
//!
//! Why not `axum::serve`: it has no header-read or idle timeout and no connection limit, so
//! partial-header or idle connections stayed open forever and 1,100 of them used up a 1,024
//! file limit, locking every client out. hyper's own connection builder has the header-read
//! timeout; the idle timeout wraps the socket; the limit is a semaphore shared by the
//! listeners, a slot taken as a connection is accepted and held until it closes. Over TLS the
//! handshake comes first, within the header-read timeout, holding its slot.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// Bounds on the connections one listener holds.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a connection has, from when it waits for a request (new, or after an answer),
    /// to deliver that request's complete headers; also how long an idle keep-alive connection
    /// is kept.
    pub header_read_timeout: Duration,
    /// Time without a byte moving either way after which a connection is closed (a stalled
    /// upload, or a client that stopped reading its answer).
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            // Below the common 1,024 file limit, leaving room for the database's files.
            max_connections: 768,
        }
    }
}

/// One listening socket and how its connections are served.
#[derive(Debug)]
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// HTTPS with this configuration when set, plain HTTP otherwise.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// What absolute URLs in answers to requests on this listener start with (see
    /// [`request_base_url`]): usually the listener's own `http(s)://address`, or the configured
    /// public URL to give every listener the same. `None`: the configured public URL.
    pub base_url: Option<String>,
}

impl Listener {
    /// `http://<address>` or `https://<address>` of the bound socket.
    pub fn own_url(&self) -> io::Result<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}", self.tcp.local_addr()?))
    }
}

/// The base URL of the listener a request arrived on (no trailing slash), set on every
/// request as an extension by [`serve_listeners`].
#[derive(Debug, Clone)]
pub struct ListenerUrl(pub Arc<str>);

/// The base URL (`scheme://host:port`, no trailing slash) that absolute URLs in the answer to
/// a request start with: its listener's ([`Listener::base_url`]), or else
/// [`ApiConfig::public_url`](crate::ApiConfig::public_url) (a request built in-process, e.g.
/// by a test through the router, has no listener).
pub fn request_base_url<'a>(
    extensions: &'a axum::http::Extensions,
    config: &'a crate::ApiConfig,
) -> &'a str {
    extensions
        .get::<ListenerUrl>()
        .map_or(config.public_url.as_str(), |url| &url.0)
}

/// Serves `app` on `listener` (plain HTTP) until `shutdown` resolves, then lets requests in
/// flight finish.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = Listener {
        tcp: listener,
        tls: None,
        base_url: None,
    };
    serve_listeners(vec![listener], app, limits, shutdown).await
}

/// Serves `app` on every listener until `shutdown` resolves, then lets requests in flight
/// finish. The connection limit is shared: it bounds the process's sockets, whichever
/// listener they came from.
pub async fn serve_listeners(
    listeners: Vec<Listener>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        slots: Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1))),
        graceful: GracefulShutdown::new(),
        limits,
    });
    let (stop, stopped) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = match listener.base_url {
            Some(url) => app.clone().layer(axum::Extension(ListenerUrl(url.into()))),
            None => app.clone(),
        };
        let acceptor = listener.tls.map(tokio_rustls::TlsAcceptor::from);
        loops.spawn(accept_loop(
            listener.tcp,
            acceptor,
            app,
            Arc::clone(&shared),
            stopped.clone(),
        ));
    }
    shutdown.await;
    let _ = stop.send(true);
    while loops.join_next().await.is_some() {}
    // Every accept loop has ended, so this is the last reference.
    if let Some(shared) = Arc::into_inner(shared) {
        shared.graceful.shutdown().await;
    }
    Ok(())
}

/// What every accept loop of a server shares.
struct Shared {
    slots: Arc<tokio::sync::Semaphore>,
    graceful: GracefulShutdown,
    limits: ConnectionLimits,
}

/// Accepts connections on one listener until `stopped` turns true.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait for connections to end.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_requested(&mut stopped) => break,
        };
        // Why the slot after `accept`: listeners share the limit, and a loop that held a slot
        // while it waited in `accept` would keep it from the other listeners' clients. So
        // each loop holds at most one accepted socket beyond the limit; the rest wait in the
        // listen backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&shared.slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stop_requested(&mut stopped) => break,
        };
        let connection = Connection {
            peer,
            limits: shared.limits.clone(),
            _permit: permit,
            watcher: shared.graceful.watcher(),
            stopped: stopped.clone(),
        };
        tokio::spawn(connection.run(stream, tls.clone(), app.clone()));
    }
}

/// Resolves once the server is stopping.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // Why the wrapper: the guard `wait_for` returns is not `Send`, and must not be held
    // across the other branches' awaits.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// One accepted connection, holding a slot of the connection limit until it ends.
struct Connection {
    peer: std::net::SocketAddr,
    limits: ConnectionLimits,
    _permit: tokio::sync::OwnedSemaphorePermit,
    watcher: Watcher,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>, app: Router) {
        let _ = stream.set_nodelay(true);
        let stream = IdleTimeout::new(stream, self.limits.idle_timeout);
        match tls {
            None => self.serve_http(stream, app).await,
            Some(acceptor) => {
                let mut stopped = self.stopped.clone();
                // Why the header-read timeout: the handshake is the first thing a client owes,
                // and a client that never sends its ClientHello must not keep its slot.
                let handshake =
                    tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(stream));
                let outcome = tokio::select! {
                    outcome = handshake => outcome,
                    () = stop_requested(&mut stopped) => return,
                };
                match outcome {
                    Ok(Ok(tls_stream)) => self.serve_http(tls_stream, app).await,
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
        }
    }

    /// Serves HTTP/1.1 on `io` (a socket, or a TLS stream over one) until it closes.
    async fn serve_http<I>(self, io: I, app: Router)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = &self.limits;
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        // The client's address, for handlers that count by it (failed sign-ins).
        let peer = self.peer;
        let service = tower::ServiceExt::map_request(
            app,
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let connection =
            builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        if let Err(error) = self.watcher.watch(connection).await {
            tracing::debug!(%error, "connection ended with an error");
        }
        // The permit (`self._permit`) is released here, as the connection has ended.
    }
}

/// A socket that fails with `TimedOut` once no byte has moved for its timeout while it is
/// being read or written.
///
/// The timer is re-armed lazily: a read or write that moves bytes only notes the time, and
/// the timer, when it fires, is pushed to the last movement's deadline if that is later.
/// Why: resetting a registered `Sleep` on every read and write takes the timer wheel's lock
/// and moves the entry, twice a request on a busy keep-alive connection.
struct IdleTimeout {
    stream: TcpStream,
    timeout: Duration,
    /// When bytes last moved (or the connection opened).
    last_moved: Instant,
    /// Fires at or before `last_moved + timeout`.
    deadline: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(stream: TcpStream, timeout: Duration) -> Self {
        IdleTimeout {
            stream,
            timeout,
            last_moved: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn moved(&mut self) {
        self.last_moved = Instant::now();
    }

    /// After a pending read or write: the error to fail with when the deadline has passed.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last_moved + self.timeout;
            if Instant::now() >= due {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ));
            }
            // Bytes moved since the timer was armed: wait for the later deadline.
            self.deadline.as_mut().reset(due);
        }
    }

    fn after<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.moved();
                Poll::Ready(result)
            }
            Poll::Pending => self.expired(cx).map(Err),
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        this.after(cx, poll)
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.after(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
