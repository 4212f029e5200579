//! Shared test helpers: an in-memory manager whose backend can be taken down.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use mltb_pool::ManageConnection;

/// Switches shared between a test and its [`MemManager`].
#[derive(Debug, Default)]
pub struct Backend {
    pub down: AtomicBool,
    pub opened: AtomicU64,
}

/// Hands out in-memory connections; fails to connect or validate while `down`.
#[derive(Debug, Clone, Default)]
pub struct MemManager {
    pub backend: Arc<Backend>,
}

/// An in-memory connection with an id and a broken flag.
#[derive(Debug)]
pub struct MemConn {
    pub id: u64,
    pub broken: bool,
}

impl ManageConnection for MemManager {
    type Connection = MemConn;
    type Error = io::Error;

    async fn connect(&self) -> Result<MemConn, io::Error> {
        if self.backend.down.load(Relaxed) {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "backend is down"));
        }
        Ok(MemConn { id: self.backend.opened.fetch_add(1, Relaxed), broken: false })
    }

    async fn is_valid(&self, _: &mut MemConn) -> Result<(), io::Error> {
        if self.backend.down.load(Relaxed) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "backend is down"));
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut MemConn) -> bool {
        conn.broken
    }
}
