//! [`Pooled`]: a checked-out connection that goes back to the pool when dropped.

use std::borrow::Cow;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bb8::ManageConnection;
use tokio::time::Instant;

use super::Shared;

/// A connection checked out of a [`Pool`](crate::Pool); derefs to the connection.
///
/// Dropping it returns the connection, unless the manager reports it broken
/// ([`ManageConnection::has_broken`]), in which case the pool closes it and opens a
/// replacement in the background.
pub struct Pooled<'a, M: ManageConnection> {
    // Field order is drop order: the connection goes back to bb8 *before* the ticket
    // releases its permit, so the next permit holder finds it idle.
    conn: bb8::PooledConnection<'a, M>,
    _ticket: Ticket<'a>,
}

impl<'a, M: ManageConnection> Pooled<'a, M> {
    pub(super) fn new(conn: bb8::PooledConnection<'a, M>, ticket: Ticket<'a>) -> Self {
        Self { conn, _ticket: ticket }
    }
}

impl<M: ManageConnection> Deref for Pooled<'_, M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.conn
    }
}

impl<M: ManageConnection> DerefMut for Pooled<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn
    }
}

impl<M: ManageConnection> fmt::Debug for Pooled<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled").field("checked_out_for", &self._ticket.held()).finish_non_exhaustive()
    }
}

/// One permit of the pool's gate, and, once a connection is attached, the record of
/// its checkout. Dropping it records the return (if any) and releases the permit.
pub(super) struct Ticket<'a> {
    shared: Cow<'a, Arc<Shared>>,
    out_at: Option<Instant>,
}

impl<'a> Ticket<'a> {
    /// Takes ownership of a permit already acquired (and forgotten) from the gate.
    pub(super) fn new(shared: Cow<'a, Arc<Shared>>) -> Self {
        Self { shared, out_at: None }
    }

    pub(super) fn check_out(&mut self, asked: Instant) {
        let now = Instant::now();
        self.shared.recorder.checked_out(asked, now);
        self.out_at = Some(now);
    }

    fn held(&self) -> Option<std::time::Duration> {
        self.out_at.map(|t| t.elapsed())
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(out_at) = self.out_at {
            self.shared.recorder.checked_in(out_at);
        }
        self.shared.gate.add_permits(1);
    }
}
