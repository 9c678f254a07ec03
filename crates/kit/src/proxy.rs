//! A TCP proxy for tests that play a dropped connection, between a browser and the hub.
//!
//! [`Proxy::start`] listens on `127.0.0.1:0` and forwards every connection to its target.
//! [`Proxy::cut`] closes every forwarded connection at once and refuses new ones (accepts
//! and closes them at once) until [`Proxy::restore`]; [`Proxy::connections`] counts the
//! connections forwarded so far, so a test can wait for a client to reconnect
//! ([`Proxy::wait_connections`]).
//!
//! ```ignore
//! let proxy = Proxy::start(hub_addr).await?;
//! browser.goto(&format!("{}/store", proxy.url())).await?;
//! let before = proxy.connections();
//! proxy.cut().await;            // the page's event stream drops
//! proxy.restore();
//! proxy.wait_connections(before + 1, WAIT).await?;   // the page reconnected
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A wait on the proxy that ran out.
#[derive(Debug, thiserror::Error)]
#[error(
    "timed out after {waited:?} waiting for {wanted} forwarded connections to {target}: {seen} so far, {refused} refused"
)]
pub struct ProxyTimeout {
    pub target: SocketAddr,
    pub wanted: usize,
    pub seen: usize,
    pub refused: usize,
    pub waited: Duration,
}

/// A running proxy; dropping it stops it and closes its connections.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
    /// Connections forwarded so far.
    forwarded: watch::Sender<usize>,
    /// Connections refused during a cut.
    refused: AtomicUsize,
}

struct State {
    cut: bool,
    /// One task per forwarded connection: aborting it closes both sockets.
    connections: JoinSet<()>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards each connection to `target`.
    pub async fn start(target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            state: Mutex::new(State {
                cut: false,
                connections: JoinSet::new(),
            }),
            forwarded: watch::Sender::new(0),
            refused: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%addr, %target, "proxy started");
        Ok(Proxy {
            addr,
            shared,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the proxy as an HTTP base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where connections are forwarded.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Closes every forwarded connection (both sides) and refuses new ones until
    /// [`restore`](Self::restore). When it returns, no forwarded connection is open.
    pub async fn cut(&self) {
        let mut connections = {
            let mut state = self.shared.state();
            state.cut = true;
            std::mem::take(&mut state.connections)
        };
        let open = connections.len();
        // Aborts every connection's task, which drops its sockets, and waits for all.
        connections.shutdown().await;
        tracing::debug!(addr = %self.addr, open, "proxy cut");
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.shared.state().cut = false;
        tracing::debug!(addr = %self.addr, "proxy restored");
    }

    /// Whether the proxy is cut now.
    pub fn is_cut(&self) -> bool {
        self.shared.state().cut
    }

    /// Connections accepted and forwarded so far (not those refused during a cut).
    pub fn connections(&self) -> usize {
        *self.shared.forwarded.borrow()
    }

    /// Connections refused (accepted and closed at once) during cuts so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Waits until at least `at_least` connections have been forwarded in all, and returns
    /// how many.
    pub async fn wait_connections(
        &self,
        at_least: usize,
        timeout: Duration,
    ) -> Result<usize, ProxyTimeout> {
        let mut forwarded = self.shared.forwarded.subscribe();
        match tokio::time::timeout(timeout, forwarded.wait_for(|&n| n >= at_least)).await {
            Ok(Ok(n)) => Ok(*n),
            // The sender lives in `self.shared`, so it cannot be gone; report as a timeout.
            Ok(Err(_)) | Err(_) => Err(ProxyTimeout {
                target: self.shared.target,
                wanted: at_least,
                seen: self.connections(),
                refused: self.refused(),
                waited: timeout,
            }),
        }
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("connections", &self.connections())
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        let mut state = self.shared.state();
        state.cut = true;
        // Dropping the set aborts every connection's task.
        drop(std::mem::take(&mut state.connections));
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (inbound, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "proxy cannot accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut state = shared.state();
        while state.connections.try_join_next().is_some() {}
        if state.cut {
            drop(state);
            shared.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "proxy cut: connection refused");
            drop(inbound);
            continue;
        }
        state
            .connections
            .spawn(forward(inbound, peer, shared.target));
        drop(state);
        shared.forwarded.send_modify(|n| *n += 1);
    }
}

async fn forward(mut inbound: TcpStream, peer: SocketAddr, target: SocketAddr) {
    let mut outbound = match TcpStream::connect(target).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(%peer, %target, error = %e, "proxy cannot reach its target");
            return;
        }
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    match tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await {
        Ok((up, down)) => tracing::trace!(%peer, up, down, "proxied connection closed"),
        Err(e) => tracing::trace!(%peer, error = %e, "proxied connection failed"),
    }
}
