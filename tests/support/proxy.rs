//! A TCP proxy on 127.0.0.1 that a test can cut and restore, to make a
//! database disappear and come back without touching the real server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};

/// Forwards connections to `target` while enabled.
pub struct Proxy {
    pub address: SocketAddr,
    enabled: Arc<AtomicBool>,
    /// Bumped on every cut, so connections opened before it end.
    generation: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts forwarding from a free port on 127.0.0.1 to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let address = listener.local_addr().unwrap();
        let enabled = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (accept_enabled, accept_generation) = (Arc::clone(&enabled), Arc::clone(&generation));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accept_enabled.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let generation = Arc::clone(&accept_generation);
                tokio::spawn(forward(client, target, generation));
            }
        });
        Self { address, enabled, generation }
    }

    /// Refuses new connections and ends the open ones, like a stopped server.
    /// Returns once every forwarder has seen the cut (they check every 20 ms).
    pub async fn cut(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, generation: Arc<AtomicU64>) {
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    let born = generation.load(Ordering::SeqCst);
    let cut = async {
        while generation.load(Ordering::SeqCst) == born {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = cut => {}
    }
}
