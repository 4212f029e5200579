//! Button presses: what each does, checked against the signature, the chat and the
//! presser; and the answer the presser sees.

use frankenstein::methods::AnswerCallbackQueryParams;
use frankenstein::types::{CallbackQuery, MaybeInaccessibleMessage};
use mltb_store::Backend;

use super::error::ButtonError;
use super::handle::Board;
use super::render::{Confirm, TaskLine};
use super::sign::Action;

/// What [`Board::handle_callback`](super::Board::handle_callback) did with a press.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackOutcome {
    /// The board shows `page` (refresh, previous, next).
    Shown {
        /// The page asked for, from 0 (the board clamps it to its last page).
        page: usize,
    },
    /// The board now asks to confirm the cancel of `task`.
    ConfirmAsked {
        /// The task.
        task: i64,
    },
    /// `task` was cancelled.
    Cancelled {
        /// The task.
        task: i64,
    },
    /// The confirmation was left; `task` keeps running.
    KeptRunning {
        /// The task.
        task: i64,
    },
    /// The presser may not cancel `task` (the [`Authorizer`](super::Authorizer) said no).
    NotAllowed {
        /// The task.
        task: i64,
    },
    /// The confirmation belongs to the user who asked for it, not the presser.
    NotYours {
        /// The task.
        task: i64,
    },
    /// `task` is not running in this chat any more.
    NotRunning {
        /// The task.
        task: i64,
    },
    /// The data failed verification: forged, altered, another chat's, expired, unknown.
    Invalid(ButtonError),
    /// The press carries no data, or comes from an inline message: not a board button.
    NotABoardButton,
}

impl CallbackOutcome {
    /// Whether the press was refused.
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            CallbackOutcome::NotAllowed { .. }
                | CallbackOutcome::NotYours { .. }
                | CallbackOutcome::NotRunning { .. }
                | CallbackOutcome::Invalid(_)
                | CallbackOutcome::NotABoardButton
        )
    }
}

/// The answer to a press: what happened, and the text the presser sees.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackReply {
    /// What happened.
    pub outcome: CallbackOutcome,
    /// The notification shown to the presser (at most 200 characters).
    pub text: String,
    /// Whether to show it as an alert (refusals) rather than a passing notification.
    pub alert: bool,
}

impl CallbackReply {
    pub(crate) fn new(outcome: CallbackOutcome) -> Self {
        let text = match &outcome {
            CallbackOutcome::Shown { page } => format!("Page {}", page + 1),
            CallbackOutcome::ConfirmAsked { task } => {
                format!("Press \"Confirm cancel #{task}\" to cancel it.")
            }
            CallbackOutcome::Cancelled { task } => format!("Cancelling task #{task}."),
            CallbackOutcome::KeptRunning { task } => format!("Task #{task} keeps running."),
            CallbackOutcome::NotAllowed { task } => format!("You may not cancel task #{task}."),
            CallbackOutcome::NotYours { .. } => "Only the user who asked can answer this.".to_string(),
            CallbackOutcome::NotRunning { task } => format!("Task #{task} is not running any more."),
            CallbackOutcome::Invalid(e) => e.user_text().to_string(),
            CallbackOutcome::NotABoardButton => "This button does nothing.".to_string(),
        };
        let alert = outcome.is_refused();
        Self { outcome, text, alert }
    }

    /// The `answerCallbackQuery` for the query `callback_query_id`; Telegram wants every
    /// press answered, or the button keeps spinning. Not rate-limited, so the bot calls
    /// its client directly rather than the scheduler.
    pub fn answer(&self, callback_query_id: impl Into<String>) -> AnswerCallbackQueryParams {
        AnswerCallbackQueryParams::builder()
            .callback_query_id(callback_query_id.into())
            .text(self.text.clone())
            .show_alert(self.alert)
            .build()
    }
}

impl<B: Backend> Board<B> {
    /// Handles a press on a board button: checks the signed data against the chat it
    /// was pressed in and the presser, then shows a page, asks for or carries out a
    /// cancel. The bot answers the query with [`CallbackReply::answer`].
    ///
    /// Presses that are not the board's come back as [`CallbackOutcome::NotABoardButton`]
    /// (no data, an inline message) or [`CallbackOutcome::Invalid`] (data the board did
    /// not sign); a bot with other inline buttons routes its own first.
    pub async fn handle_callback(&self, query: &CallbackQuery) -> CallbackReply {
        let shared = &self.shared;
        let Some(data) = query.data.as_deref() else {
            return CallbackReply::new(CallbackOutcome::NotABoardButton);
        };
        let chat = match &query.message {
            Some(MaybeInaccessibleMessage::Message(m)) => m.chat.id,
            Some(MaybeInaccessibleMessage::InaccessibleMessage(m)) => m.chat.id,
            None => return CallbackReply::new(CallbackOutcome::NotABoardButton),
        };
        let presser = i64::try_from(query.from.id).unwrap_or(i64::MAX);
        let now_ms = (shared.clock)();
        let button = match shared.signer.verify(data, chat, now_ms) {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(chat, presser, error = %e, "refused a board button");
                return CallbackReply::new(CallbackOutcome::Invalid(e));
            }
        };
        let running = |task: i64| {
            shared
                .engine
                .all_tasks()
                .into_iter()
                .find(|t| t.id == task && t.chat == chat)
                .map(|t| TaskLine::from(&t))
        };
        let outcome = match button.action {
            Action::Show { page } => {
                shared.touch(chat, |v| v.page = usize::from(page));
                CallbackOutcome::Shown { page: usize::from(page) }
            }
            Action::Cancel { task } => match running(task) {
                None => CallbackOutcome::NotRunning { task },
                Some(t) if button.user != Some(t.user) => CallbackOutcome::NotAllowed { task },
                Some(t) if !shared.authorizer.may_cancel(presser, &t).await => {
                    CallbackOutcome::NotAllowed { task }
                }
                Some(_) => {
                    // Show the page the task is on, where the confirmation appears.
                    let position = shared
                        .engine
                        .all_tasks()
                        .iter()
                        .filter(|t| t.chat == chat)
                        .position(|t| t.id == task);
                    let page_size = shared.config.page_size.max(1);
                    shared.touch(chat, |v| {
                        v.confirm = Some((Confirm { task, user: presser }, now_ms));
                        if let Some(p) = position {
                            v.page = p / page_size;
                        }
                    });
                    CallbackOutcome::ConfirmAsked { task }
                }
            },
            Action::ConfirmCancel { task } => match running(task) {
                _ if button.user != Some(presser) => CallbackOutcome::NotYours { task },
                None => CallbackOutcome::NotRunning { task },
                Some(t) if !shared.authorizer.may_cancel(presser, &t).await => {
                    CallbackOutcome::NotAllowed { task }
                }
                Some(_) => {
                    shared.note_cancel(task, presser);
                    let cancelled = shared.engine.cancel_anywhere(task).await.unwrap_or_else(|e| {
                        tracing::warn!(task, error = %e, "could not cancel from the board");
                        false
                    });
                    if !cancelled {
                        shared.take_canceller(task);
                    }
                    shared.touch(chat, |v| v.confirm = None);
                    if cancelled {
                        tracing::info!(chat, task, by = presser, "task cancelled from the board");
                        CallbackOutcome::Cancelled { task }
                    } else {
                        CallbackOutcome::NotRunning { task }
                    }
                }
            },
            Action::Back { task } => {
                if button.user == Some(presser) {
                    shared.touch(chat, |v| {
                        if v.confirm.is_some_and(|(c, _)| c.task == task) {
                            v.confirm = None;
                        }
                    });
                    CallbackOutcome::KeptRunning { task }
                } else {
                    CallbackOutcome::NotYours { task }
                }
            }
        };
        CallbackReply::new(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_fit_and_refusals_alert() {
        let outcomes = [
            CallbackOutcome::Shown { page: 1 },
            CallbackOutcome::ConfirmAsked { task: i64::MAX },
            CallbackOutcome::Cancelled { task: i64::MIN },
            CallbackOutcome::KeptRunning { task: 1 },
            CallbackOutcome::NotAllowed { task: i64::MIN },
            CallbackOutcome::NotYours { task: 1 },
            CallbackOutcome::NotRunning { task: i64::MIN },
            CallbackOutcome::Invalid(ButtonError::BadSignature),
            CallbackOutcome::Invalid(ButtonError::FromTheFuture),
            CallbackOutcome::NotABoardButton,
        ];
        for o in outcomes {
            let r = CallbackReply::new(o.clone());
            assert!(!r.text.is_empty() && r.text.chars().count() <= 200, "{r:?}");
            assert_eq!(r.alert, o.is_refused());
            let a = r.answer("q1");
            assert_eq!((a.callback_query_id.as_str(), a.show_alert), ("q1", Some(r.alert)));
        }
        assert_eq!(CallbackReply::new(CallbackOutcome::Shown { page: 1 }).text, "Page 2");
    }
}
