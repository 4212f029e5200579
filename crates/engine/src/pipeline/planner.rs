//! The standard [`TaskPlanner`]: a leech goes to Telegram, a mirror through rclone, each
//! with the bot's defaults and the task's own options.

use std::path::PathBuf;
use std::sync::Arc;

use mltb_store::{Task, TaskKind};
use mltb_telegram::scheduler::Scheduler;

use super::{TaskOptions, TaskPlanner};
use crate::leech::{CLOUD_SPLIT_SIZE, LeechTarget, SentFiles, TelegramUploader};
use crate::mirror::{MirrorTarget, RcloneUploader};
use crate::upload::Uploader;
use crate::{ErrorKind, Result};

/// The bot's leech defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeechDefaults {
    /// Split size when a task does not set one: [`CLOUD_SPLIT_SIZE`] against the cloud Bot
    /// API, [`LOCAL_SPLIT_SIZE`](crate::leech::LOCAL_SPLIT_SIZE) against a local server.
    pub split_size: u64,
    /// The largest split size a task may ask for (the Bot API's upload limit).
    pub max_split_size: u64,
    /// Where every upload goes instead of the task's chat, when set.
    pub dump_chat: Option<i64>,
}

impl Default for LeechDefaults {
    fn default() -> Self {
        Self { split_size: CLOUD_SPLIT_SIZE, max_split_size: CLOUD_SPLIT_SIZE, dump_chat: None }
    }
}

impl LeechDefaults {
    /// Defaults against a Bot API whose upload limit is `limit` bytes: split at it.
    pub fn for_limit(limit: u64) -> Self {
        Self { split_size: limit, max_split_size: limit, dump_chat: None }
    }

    /// Uploads go to `chat` instead of the task's chat.
    pub fn dump_chat(mut self, chat: Option<i64>) -> Self {
        self.dump_chat = chat;
        self
    }
}

/// The bot's mirror defaults.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MirrorDefaults {
    /// The destination (`remote:path`) when a task does not name one.
    pub destination: Option<String>,
    /// The rclone config file (never logged).
    pub config_file: Option<PathBuf>,
    /// Extra rclone flags for every transfer.
    pub flags: Vec<String>,
    /// The rclone program (`None`: `rclone` from `PATH`).
    pub program: Option<PathBuf>,
}

impl std::fmt::Debug for MirrorDefaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorDefaults")
            .field("destination", &self.destination.as_deref().map(redacted_destination))
            .field("config_file", &self.config_file.as_ref().map(|_| "set"))
            .field("flags", &self.flags.len())
            .field("program", &self.program)
            .finish()
    }
}

/// Inline remotes may carry a password; show only the remote's name.
fn redacted_destination(destination: &str) -> String {
    match MirrorTarget::parse(destination) {
        Ok(target) => format!("{target:?}"),
        Err(_) => "(invalid)".into(),
    }
}

impl MirrorDefaults {
    /// Tasks that name no destination go to `destination`.
    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = Some(destination.into());
        self
    }

    /// The rclone config file.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Extra rclone flags.
    pub fn flags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, flags: I) -> Self {
        self.flags = flags.into_iter().map(Into::into).collect();
        self
    }

    /// The rclone program.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }
}

/// Leech to Telegram through the bot's [`Scheduler`], mirror through rclone.
#[derive(Clone)]
pub struct StandardPlanner {
    scheduler: Scheduler,
    sent: Arc<dyn SentFiles>,
    leech: LeechDefaults,
    mirror: MirrorDefaults,
}

impl std::fmt::Debug for StandardPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardPlanner")
            .field("leech", &self.leech)
            .field("mirror", &self.mirror)
            .finish_non_exhaustive()
    }
}

impl StandardPlanner {
    /// A planner sending through `scheduler` and remembering sent files in `sent` (the
    /// store).
    pub fn new(
        scheduler: Scheduler,
        sent: Arc<dyn SentFiles>,
        leech: LeechDefaults,
        mirror: MirrorDefaults,
    ) -> Self {
        Self { scheduler, sent, leech, mirror }
    }

    /// The leech target for `task`: its chat (or the dump chat) and its split size.
    pub fn leech_target(&self, task: &Task, options: &TaskOptions) -> Result<LeechTarget> {
        let split = options.split_size.unwrap_or(self.leech.split_size);
        if split == 0 || split > self.leech.max_split_size {
            return Err(ErrorKind::Config {
                setting: "split size",
                value: split.to_string(),
                expected: format!("1 to {} bytes (the Bot API's upload limit)", self.leech.max_split_size),
            }
            .into());
        }
        Ok(LeechTarget::new(task.chat, split)
            .dump_chat(self.leech.dump_chat)
            .as_media(options.as_media)
            .name_prefix(options.name_prefix.clone().unwrap_or_default()))
    }

    /// The mirror target for `task`: its own destination, else the default one.
    pub fn mirror_target(&self, options: &TaskOptions) -> Result<MirrorTarget> {
        let destination =
            options.upload.as_deref().or(self.mirror.destination.as_deref()).ok_or_else(|| {
                crate::Error::from(ErrorKind::Config {
                    setting: "mirror destination",
                    value: "(none)".into(),
                    expected: "a `remote:path` in the task or in the bot's config".into(),
                })
            })?;
        Ok(MirrorTarget::parse(destination)?
            .config_file(self.mirror.config_file.clone())
            .flags(self.mirror.flags.iter().cloned()))
    }
}

#[async_trait::async_trait]
impl TaskPlanner for StandardPlanner {
    async fn uploader(&self, task: &Task) -> Result<Arc<dyn Uploader>> {
        let options = TaskOptions::from_json(&task.options)?;
        match task.kind {
            TaskKind::Leech => {
                let target = self.leech_target(task, &options)?;
                Ok(Arc::new(TelegramUploader::new(self.scheduler.clone(), self.sent.clone(), target)?))
            }
            TaskKind::Mirror => {
                let mut uploader = RcloneUploader::new(self.mirror_target(&options)?)?;
                if let Some(program) = &self.mirror.program {
                    uploader = uploader.program(program.clone());
                }
                Ok(Arc::new(uploader))
            }
        }
    }
}
