//! Secrets: read only from the environment (`MLTB_X`) or from a file it names
//! (`MLTB_X_FILE`), never from the config file, and never shown.

use std::fmt;

use super::{ConfigError, Env};

/// A secret value. Its `Debug` and `Display` print `[redacted]`; only
/// [`expose`](Self::expose) gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The secrets the bot knows, each with its environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Secrets {
    /// The bot's token from @BotFather (`MLTB_BOT_TOKEN`).
    pub bot_token: Option<Secret>,
    /// The HTTP API's bearer token (`MLTB_API_TOKEN`); without it `/api/*` is refused.
    pub api_token: Option<Secret>,
    /// A PostgreSQL URL (`MLTB_DATABASE_URL`); without it the store is SQLite.
    pub database_url: Option<Secret>,
    /// A Redis URL (`MLTB_REDIS_URL`); without it caches and limits are local.
    pub redis_url: Option<Secret>,
    /// The path of rclone's config file (`MLTB_RCLONE_CONFIG`).
    pub rclone_config: Option<Secret>,
    /// The key that signs the status board's buttons (`MLTB_CALLBACK_KEY`); without it
    /// one is generated and kept in the data directory.
    pub callback_key: Option<Secret>,
}

/// Every secret: its name in [`Secrets`] and its environment variable.
pub const SECRET_VARS: &[(&str, &str)] = &[
    ("bot_token", "MLTB_BOT_TOKEN"),
    ("api_token", "MLTB_API_TOKEN"),
    ("database_url", "MLTB_DATABASE_URL"),
    ("redis_url", "MLTB_REDIS_URL"),
    ("rclone_config", "MLTB_RCLONE_CONFIG"),
    ("callback_key", "MLTB_CALLBACK_KEY"),
];

impl Secrets {
    /// Reads every secret from `env`: `VAR` or `VAR_FILE` (the file's content, one
    /// trailing newline removed), not both; an empty value counts as unset.
    pub(super) fn from_env(env: &Env, problems: &mut Vec<ConfigError>) -> Self {
        let mut out = Self::default();
        for (name, var) in SECRET_VARS {
            let value = match read(env, var) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            let slot = match *name {
                "bot_token" => &mut out.bot_token,
                "api_token" => &mut out.api_token,
                "database_url" => &mut out.database_url,
                "redis_url" => &mut out.redis_url,
                "rclone_config" => &mut out.rclone_config,
                _ => &mut out.callback_key,
            };
            *slot = value;
        }
        out
    }
}

fn read(env: &Env, var: &str) -> Result<Option<Secret>, ConfigError> {
    let file_var = format!("{var}_FILE");
    let direct = env.get(var).filter(|v| !v.is_empty());
    let file = env.get(&file_var).filter(|v| !v.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => {
            Err(ConfigError::new(var, format!("both {var} and {file_var} are set; set one of them")))
        }
        (Some(v), None) => Ok(Some(Secret(v))),
        (None, Some(path)) => {
            let text =
                mltb_store::secret::read_file(&path).map_err(|why| ConfigError::new(&file_var, why))?;
            Ok(Some(Secret(text)))
        }
        (None, None) => Ok(None),
    }
}
