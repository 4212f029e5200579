//! A task's options as the store keeps them (JSON), typed.

use serde::{Deserialize, Serialize};

use crate::Pack;

/// The options of a task, kept with it in the store so that a restart resumes with the
/// same ones. Unknown keys are ignored; missing ones take their defaults.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TaskOptions {
    /// Extra request headers for URL downloads, as `Name: value`.
    pub headers: Vec<String>,
    /// HTTP basic auth user.
    pub user: Option<String>,
    /// HTTP basic auth password.
    pub password: Option<String>,
    /// Torrent files to download (1-based); all when absent.
    pub select: Option<Vec<u32>>,
    /// Leech: split size in bytes, instead of the configured one.
    pub split_size: Option<u64>,
    /// Leech: send videos as media.
    pub as_media: bool,
    /// Mirror: the rclone destination (`remote:path`), instead of the configured one.
    pub upload: Option<String>,
    /// Extract the downloaded archives before the upload (`-e`).
    pub extract: Option<Pack>,
    /// Zip the files into one `<name>.zip` before the upload (`-z`), after extracting
    /// when both are asked for.
    pub zip: Option<Pack>,
}

impl TaskOptions {
    /// Reads options from a task's JSON; a value that is not an object gives the defaults.
    pub fn from_json(value: &serde_json::Value) -> crate::Result<Self> {
        if value.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(value.clone()).map_err(|e| {
            crate::ErrorKind::Config {
                setting: "task options",
                value: "(stored JSON)".into(),
                expected: format!("the engine's options: {e}"),
            }
            .into()
        })
    }

    /// The options as JSON, for [`NewTask::options`](mltb_store::NewTask).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Debug for TaskOptions {
    // The password is a secret; headers may carry cookies or tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskOptions")
            .field("headers", &self.headers.len())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("select", &self.select)
            .field("split_size", &self.split_size)
            .field("as_media", &self.as_media)
            .field("upload", &self.upload)
            .field("extract", &self.extract)
            .field("zip", &self.zip)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_hide_the_password() {
        let o = TaskOptions {
            headers: vec!["Cookie: a=b".into()],
            user: Some("u".into()),
            password: Some("hunter2".into()),
            select: Some(vec![1, 3]),
            zip: Some(Pack::new(Some("zip-secret".into()))),
            extract: Some(Pack::default()),
            ..TaskOptions::default()
        };
        assert_eq!(TaskOptions::from_json(&o.to_json()).unwrap(), o);
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(!format!("{o:?}").contains("zip-secret"));
        assert_eq!(TaskOptions::from_json(&serde_json::Value::Null).unwrap(), TaskOptions::default());
        assert_eq!(
            TaskOptions::from_json(&serde_json::json!({"unknown": 1})).unwrap(),
            TaskOptions::default()
        );
        assert!(TaskOptions::from_json(&serde_json::json!({"select": "all"})).is_err());
    }
}
