//! What a button press did, and the answer the presser sees.

use frankenstein::methods::AnswerCallbackQueryParams;

use super::error::ButtonError;

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
