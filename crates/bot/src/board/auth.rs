//! Who may cancel a task from the board: the bot decides, the board asks.

use std::sync::Arc;

use super::render::TaskLine;

/// Decides whether the user who pressed a board's cancel button may cancel the task.
///
/// The board knows no roles: the bot implements this over its own rules (the task's
/// user, the owner, sudo users), typically with the store's cached roles. It is asked
/// twice per cancel: when "Cancel" is pressed and again at "Confirm cancel", so a role
/// taken away in between holds.
///
/// ```
/// use mltb_bot::board::{Authorizer, TaskLine};
///
/// /// The task's user, or the bot's owner.
/// struct OwnerOrTaskUser {
///     owner: i64,
/// }
///
/// #[async_trait::async_trait]
/// impl Authorizer for OwnerOrTaskUser {
///     async fn may_cancel(&self, presser: i64, task: &TaskLine) -> bool {
///         presser == task.user || presser == self.owner
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync {
    /// Whether `presser` (a Telegram user id) may cancel `task`.
    async fn may_cancel(&self, presser: i64, task: &TaskLine) -> bool;
}

#[async_trait::async_trait]
impl<A: Authorizer + ?Sized> Authorizer for Arc<A> {
    async fn may_cancel(&self, presser: i64, task: &TaskLine) -> bool {
        (**self).may_cancel(presser, task).await
    }
}

#[async_trait::async_trait]
impl<A: Authorizer + ?Sized> Authorizer for Box<A> {
    async fn may_cancel(&self, presser: i64, task: &TaskLine) -> bool {
        (**self).may_cancel(presser, task).await
    }
}

/// Only the task's own user may cancel it: the default when the bot passes none.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskUserOnly;

#[async_trait::async_trait]
impl Authorizer for TaskUserOnly {
    async fn may_cancel(&self, presser: i64, task: &TaskLine) -> bool {
        presser == task.user
    }
}
