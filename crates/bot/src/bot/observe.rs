//! What the bot reports to whoever watches it (the binary turns it into metrics): command
//! rejections by role, and bytes moved by tasks.

use std::collections::HashMap;

use mltb_engine::{Engine, TaskView};
use mltb_store::{Backend, TaskState};
use tokio_util::sync::CancellationToken;

use crate::auth::Access;

/// Told what the bot does. Every method has a default that does nothing.
pub trait Observer: std::fmt::Debug + Send + Sync + 'static {
    /// A command was refused by the command quota of `role`.
    fn command_rejected(&self, role: Access) {
        let _ = role;
    }

    /// Tasks moved these many more bytes: downloaded, uploaded.
    fn transferred(&self, downloaded: u64, uploaded: u64) {
        let _ = (downloaded, uploaded);
    }
}

/// Observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

impl Access {
    /// The role's name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Access::Owner => "owner",
            Access::Sudo => "sudo",
            Access::Authorized => "authorized",
            Access::Guest => "guest",
            Access::Banned => "banned",
        }
    }
}

/// Bytes each task moved since it was last seen, by stage: what `views` add to `seen`.
/// A task's `done` counts its current stage; when the stage changes it starts over.
pub(super) fn deltas(
    seen: &mut HashMap<i64, (TaskState, u64)>,
    views: impl IntoIterator<Item = (i64, TaskState, u64)>,
) -> (u64, u64) {
    let (mut down, mut up) = (0u64, 0u64);
    let mut next = HashMap::new();
    for (id, state, done) in views {
        let before = match seen.get(&id) {
            Some((s, d)) if *s == state => *d,
            _ => 0,
        };
        let moved = done.saturating_sub(before);
        match state {
            TaskState::Downloading => down = down.saturating_add(moved),
            TaskState::Uploading => up = up.saturating_add(moved),
            _ => {}
        }
        next.insert(id, (state, done.max(before)));
    }
    *seen = next;
    (down, up)
}

/// Reports the bytes tasks move to `observer` as the engine's views change, until `stop`.
pub(super) async fn watch_transfers<B: Backend>(
    engine: Engine<B>,
    observer: std::sync::Arc<dyn Observer>,
    stop: CancellationToken,
) {
    let mut changes = engine.changes();
    let mut seen = HashMap::new();
    loop {
        let (down, up) = deltas(&mut seen, engine.tasks().iter().map(|v: &TaskView| (v.id, v.state, v.done)));
        if down > 0 || up > 0 {
            observer.transferred(down, up);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i64, state: TaskState, done: u64) -> (i64, TaskState, u64) {
        (id, state, done)
    }

    #[test]
    fn bytes_are_counted_once_per_stage() {
        let mut seen = HashMap::new();
        assert_eq!(deltas(&mut seen, [view(1, TaskState::Downloading, 100)]), (100, 0));
        assert_eq!(deltas(&mut seen, [view(1, TaskState::Downloading, 250)]), (150, 0));
        assert_eq!(
            deltas(&mut seen, [view(1, TaskState::Downloading, 250)]),
            (0, 0),
            "no change, nothing new"
        );
        // The upload starts over at 0 and counts as uploaded.
        assert_eq!(
            deltas(&mut seen, [view(1, TaskState::Uploading, 40), view(2, TaskState::Downloading, 7)]),
            (7, 40)
        );
        // A view that goes back (a restarted transfer) adds nothing until it passes the old figure.
        assert_eq!(deltas(&mut seen, [view(1, TaskState::Uploading, 10)]), (0, 0));
        assert_eq!(deltas(&mut seen, [view(1, TaskState::Uploading, 60)]), (0, 20));
        assert_eq!(deltas(&mut seen, []), (0, 0));
    }
}
