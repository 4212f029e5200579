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
    /// `-s`: a torrent's files are chosen on the selection page before its download
    /// starts (the task pauses once the file list is known; the choice lands in
    /// [`select`](Self::select)).
    pub choose: bool,
    /// The secret that opens the task's selection page (32 hex digits), made when a task
    /// with [`choose`](Self::choose) is submitted.
    pub choose_key: Option<String>,
    /// Leech: split size in bytes, instead of the configured one.
    pub split_size: Option<u64>,
    /// Leech: send videos as media.
    pub as_media: bool,
    /// Leech: put before each uploaded file's name (the user's `/usettings prefix`).
    pub name_prefix: Option<String>,
    /// Mirror: the rclone destination (`remote:path`), instead of the configured one.
    pub upload: Option<String>,
    /// Extract the downloaded archives before the upload (`-e`).
    pub extract: Option<Pack>,
    /// Zip the files into one `<name>.zip` before the upload (`-z`), after extracting
    /// when both are asked for.
    pub zip: Option<Pack>,
    /// `-m`: the links this task gathers into one folder, named by the task's name,
    /// downloaded one after another and uploaded together. The task's own source is the
    /// first of them; empty for a task of one link.
    pub links: Vec<Link>,
}

/// One link of a task that gathers several (`-m`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Link {
    /// Where it downloads from.
    pub source: LinkSource,
    /// The name its file gets instead of the one the source gives (`-n` on its line).
    #[serde(default)]
    pub name: Option<String>,
}

impl Link {
    /// A link with the name its source gives.
    pub fn new(source: LinkSource) -> Self {
        Self { source, name: None }
    }

    /// Names the link's file.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Where a [`Link`] downloads from: the store's [`Source`](mltb_store::Source), in a form
/// the options' JSON can hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "at", rename_all = "lowercase")]
#[non_exhaustive]
pub enum LinkSource {
    /// An HTTP(S) or FTP URL.
    Url(String),
    /// A magnet link.
    Magnet(String),
    /// A `.torrent` file, by its local path.
    Torrent(String),
}

impl From<&mltb_store::Source> for LinkSource {
    fn from(source: &mltb_store::Source) -> Self {
        match source {
            mltb_store::Source::Url(s) => LinkSource::Url(s.clone()),
            mltb_store::Source::Magnet(s) => LinkSource::Magnet(s.clone()),
            mltb_store::Source::Torrent(s) => LinkSource::Torrent(s.clone()),
        }
    }
}

impl From<&LinkSource> for mltb_store::Source {
    fn from(source: &LinkSource) -> Self {
        match source {
            LinkSource::Url(s) => mltb_store::Source::Url(s.clone()),
            LinkSource::Magnet(s) => mltb_store::Source::Magnet(s.clone()),
            LinkSource::Torrent(s) => mltb_store::Source::Torrent(s.clone()),
        }
    }
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
            .field("choose", &self.choose)
            .field("choose_key", &self.choose_key.as_ref().map(|_| "<redacted>"))
            .field("split_size", &self.split_size)
            .field("as_media", &self.as_media)
            .field("name_prefix", &self.name_prefix)
            .field("upload", &self.upload)
            .field("extract", &self.extract)
            .field("zip", &self.zip)
            .field("links", &self.links.len())
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
            choose: true,
            choose_key: Some("0123456789abcdef0123456789abcdef".into()),
            zip: Some(Pack::new(Some("zip-secret".into()))),
            extract: Some(Pack::default()),
            links: vec![
                Link::new(LinkSource::Url("https://x.test/a".into())).name("b.iso"),
                Link::new(LinkSource::Magnet("magnet:?xt=urn:btih:00".into())),
                Link::new(LinkSource::Torrent("/data/torrents/t.torrent".into())),
            ],
            ..TaskOptions::default()
        };
        assert_eq!(TaskOptions::from_json(&o.to_json()).unwrap(), o);
        assert!(!format!("{o:?}").contains("hunter2"));
        assert!(!format!("{o:?}").contains("zip-secret"));
        assert!(!format!("{o:?}").contains("0123456789abcdef"), "the selection key is a secret");
        assert_eq!(TaskOptions::from_json(&serde_json::Value::Null).unwrap(), TaskOptions::default());
        assert_eq!(
            TaskOptions::from_json(&serde_json::json!({"unknown": 1})).unwrap(),
            TaskOptions::default()
        );
        assert!(TaskOptions::from_json(&serde_json::json!({"select": "all"})).is_err());
        let links = serde_json::json!({"links": [{"source": {"kind": "url", "at": "https://x.test/a"}}]});
        assert_eq!(
            TaskOptions::from_json(&links).unwrap().links,
            [Link::new(LinkSource::Url("https://x.test/a".into()))],
            "a link's name may be left out"
        );
        for source in [
            mltb_store::Source::Url("u".into()),
            mltb_store::Source::Magnet("m".into()),
            mltb_store::Source::Torrent("t".into()),
        ] {
            assert_eq!(mltb_store::Source::from(&LinkSource::from(&source)), source);
        }
    }
}
