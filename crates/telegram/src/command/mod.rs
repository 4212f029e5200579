//! The bot's command language, after the Python bot's: `/mirror link -n name -z pass`.
//!
//! - `/cmd`, `/cmd@botname` (a command addressed to another bot is ignored: `Ok(None)`).
//! - Short aliases from a configurable table (`/m` = `/mirror`, `/l` = `/leech`).
//! - An optional suffix every command must carry (`/mirror1` with suffix `1`), like the
//!   Python bot's `CMD_SUFFIX`, so that several bots can share a group.
//! - Task commands (`mirror`, `leech`) take a link and flags; other commands take words.
//!
//! # Flags of task commands
//!
//! | flag | value | meaning |
//! |---|---|---|
//! | `-n name…` | words up to the next flag | new name |
//! | `-s` | — | select files |
//! | `-sp 500mb` | a size | split size |
//! | `-up remote:path…` | words up to the next flag | upload destination |
//! | `-doc` / `-med` | — | upload as document / as media (not both) |
//! | `-z [password]` | optional word | zip (password protected) |
//! | `-e [password]` | optional word | extract (password protected) |
//! | `-i 3` | a count ≥ 1 | multi-link: this many messages from the replied one |
//! | `-b [start:end]` | optional range of lines | bulk: one link per line of the replied message or file |
//! | `-m folder…` | words up to the next flag | same directory for multi/bulk |
//!
//! Sizes use **binary** units as the Python bot does: `500mb` is 500 × 1024² bytes;
//! `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`/`gb`/`gib`, `t`/`tb`/`tib`, `b` or none for bytes,
//! and a fraction is allowed (`1.5gb`). Quote values with spaces or leading dashes
//! (`-n "my file.mkv"`, `-z "-secret"`); inside double quotes `\"` and `\\` escape. A
//! quoted word is never a flag, and an optional value (`-z`, `-e`) is never taken from a
//! word that looks like a link unless quoted. Unknown or repeated flags are errors.
//!
//! ```
//! use mltb_telegram::command::{Args, CommandParser};
//!
//! let parser = CommandParser::builder().bot_username("mltb_bot").build();
//! let cmd = parser.parse(r#"/m@mltb_bot https://x.test/f.iso -n "my file.iso" -sp 500mb -z"#, None)?.unwrap();
//! assert_eq!(cmd.name, "mirror");
//! let Args::Task(task) = &cmd.args else { unreachable!() };
//! assert_eq!(task.link.as_deref(), Some("https://x.test/f.iso"));
//! assert_eq!(task.name.as_deref(), Some("my file.iso"));
//! assert_eq!(task.split_size, Some(500 * 1024 * 1024));
//! assert_eq!(task.zip, Some(None));
//! assert!(parser.parse("/mirror@other_bot x", None)?.is_none());
//! let err = parser.parse("/leech x -sp abc", None).unwrap_err();
//! assert_eq!(err.to_string(), r#"-sp: expected a size like 500mb, got "abc""#);
//! # Ok::<(), mltb_telegram::command::CommandError>(())
//! ```

mod lex;
mod size;
mod task;

pub use self::size::parse_size;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use self::lex::{quote, words};
use self::task::parse_task;

/// Why a command's text could not be parsed; names the flag and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A quote was opened and never closed.
    #[error("unclosed {quote} quote; close it or escape it")]
    UnclosedQuote {
        /// `"` or `'`.
        quote: char,
    },
    /// A flag needs a value and got none.
    #[error("{flag}: expected {expected}, got nothing")]
    MissingValue {
        /// The flag, e.g. `-n`.
        flag: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A flag's value is not what it takes.
    #[error("{flag}: expected {expected}, got {got:?}")]
    InvalidValue {
        /// The flag.
        flag: String,
        /// What it takes.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// A flag this command does not know.
    #[error("unknown flag {flag} for /{command}; known flags: {known}")]
    UnknownFlag {
        /// The flag as given.
        flag: String,
        /// The command.
        command: String,
        /// The flags it knows.
        known: &'static str,
    },
    /// The same flag twice.
    #[error("{flag} is given twice")]
    Duplicate {
        /// The flag.
        flag: String,
    },
    /// Two flags that exclude each other.
    #[error("{first} and {second} cannot be used together")]
    Conflict {
        /// One flag.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A second link or a stray word.
    #[error("unexpected argument {arg:?}: a task takes one link (put a name after -n)")]
    UnexpectedArgument {
        /// The word.
        arg: String,
    },
}

const KNOWN_FLAGS: &str = "-n -s -sp -up -doc -med -z -e -i -b -m";

/// What the command was sent in reply to: where a task takes its link when the command
/// has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A text message (its first word is taken as the link).
    Text(String),
    /// A document.
    Document(Document),
}

/// A Telegram document to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// `file_id`.
    pub file_id: String,
    /// `file_name`, when known.
    pub file_name: Option<String>,
}

/// `-b` bulk range: which lines of the list to take (`start:end`, `:end`, `start`), by
/// line number counting from 1, both ends included. The parser takes any number; the
/// bot refuses 0 and a start past the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkRange {
    /// First line (1 is the first), `None` = from the first.
    pub start: Option<u32>,
    /// Last line, included; `None` = to the last.
    pub end: Option<u32>,
}

/// How a leech uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadAs {
    /// `-doc`.
    Document,
    /// `-med`.
    Media,
}

/// Arguments of a task command (`mirror`, `leech`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TaskArgs {
    /// The link, from the command or the replied message's text.
    pub link: Option<String>,
    /// The replied document, when the command has no link.
    pub document: Option<Document>,
    /// `-n`: new name.
    pub name: Option<String>,
    /// `-s`: select files.
    pub select: bool,
    /// `-sp`: split size in bytes.
    pub split_size: Option<u64>,
    /// `-up`: upload destination.
    pub upload: Option<String>,
    /// `-doc` / `-med`.
    pub upload_as: Option<UploadAs>,
    /// `-z`: zip, with an optional password.
    pub zip: Option<Option<String>>,
    /// `-e`: extract, with an optional password.
    pub extract: Option<Option<String>>,
    /// `-i`: number of links/messages, starting with the replied one.
    pub multi: Option<u32>,
    /// `-b`: bulk.
    pub bulk: Option<BulkRange>,
    /// `-m`: same directory for multi/bulk.
    pub same_dir: Option<String>,
}

impl TaskArgs {
    /// These arguments, with `defaults` filling in what they leave unset (`-s` is set
    /// when either sets it): how a line of a bulk list (`-b`) keeps its own values and
    /// takes the command's other flags.
    ///
    /// ```
    /// use mltb_telegram::command::{Args, CommandParser, TaskArgs};
    ///
    /// let parser = CommandParser::default();
    /// let task = |text: &str| match parser.parse(text, None).unwrap().unwrap().args {
    ///     Args::Task(t) => *t,
    ///     Args::Words(_) => unreachable!(),
    /// };
    /// let command = task("/leech -n all -sp 100mb -doc");
    /// let line = task("/leech https://x.test/a.iso -n mine -s").or(&command);
    /// assert_eq!(line.link.as_deref(), Some("https://x.test/a.iso"));
    /// assert_eq!(line.name.as_deref(), Some("mine"), "the line's own name wins");
    /// assert_eq!(line.split_size, Some(100 << 20), "the command's flag applies");
    /// assert!(line.select);
    /// ```
    pub fn or(self, defaults: &TaskArgs) -> TaskArgs {
        let TaskArgs {
            link,
            document,
            name,
            select,
            split_size,
            upload,
            upload_as,
            zip,
            extract,
            multi,
            bulk,
            same_dir,
        } = self;
        TaskArgs {
            link: link.or_else(|| defaults.link.clone()),
            document: document.or_else(|| defaults.document.clone()),
            name: name.or_else(|| defaults.name.clone()),
            select: select || defaults.select,
            split_size: split_size.or(defaults.split_size),
            upload: upload.or_else(|| defaults.upload.clone()),
            upload_as: upload_as.or(defaults.upload_as),
            zip: zip.or_else(|| defaults.zip.clone()),
            extract: extract.or_else(|| defaults.extract.clone()),
            multi: multi.or(defaults.multi),
            bulk: bulk.or(defaults.bulk),
            same_dir: same_dir.or_else(|| defaults.same_dir.clone()),
        }
    }
}

/// A command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// A task command's link and flags.
    Task(Box<TaskArgs>),
    /// Any other command's words (quotes respected).
    Words(Vec<String>),
}

/// A parsed command: canonical name (aliases resolved, suffix removed) and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// E.g. `mirror` for `/m1@bot`.
    pub name: String,
    /// Its arguments.
    pub args: Args,
}

/// Parses commands for one bot. Build with [`CommandParser::builder`].
#[derive(Debug, Clone)]
pub struct CommandParser {
    bot_username: Option<String>,
    suffix: String,
    aliases: BTreeMap<String, String>,
    commands: BTreeSet<String>,
    task_commands: BTreeSet<String>,
}

/// Builds a [`CommandParser`].
#[derive(Debug, Clone)]
pub struct CommandParserBuilder {
    inner: CommandParser,
}

impl Default for CommandParser {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl CommandParser {
    /// The default language: task commands `mirror`, `leech`; commands `status`, `cancel`,
    /// `cancelall`, `stats`, `ping`, `help`, `auth`, `unauth`, `users`, `addsudo`, `rmsudo`,
    /// `forcestart`, `usettings`, `log`, `restart`; aliases `m`, `l`, `s` (status), `fs`
    /// (forcestart), `us` (usettings);
    /// no suffix; no bot username (then `/cmd@anything` is ignored).
    pub fn builder() -> CommandParserBuilder {
        let set = |names: &[&str]| names.iter().map(|s| (*s).to_string()).collect();
        let aliases =
            [("m", "mirror"), ("l", "leech"), ("s", "status"), ("fs", "forcestart"), ("us", "usettings")]
                .iter()
                .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
                .collect();
        CommandParserBuilder {
            inner: CommandParser {
                bot_username: None,
                suffix: String::new(),
                aliases,
                commands: set(&[
                    "status",
                    "cancel",
                    "cancelall",
                    "stats",
                    "ping",
                    "help",
                    "auth",
                    "unauth",
                    "users",
                    "addsudo",
                    "rmsudo",
                    "forcestart",
                    "usettings",
                    "log",
                    "restart",
                ]),
                task_commands: set(&["mirror", "leech"]),
            },
        }
    }

    /// Parses `text`. `Ok(None)` when it is not a command for this bot: no leading `/`,
    /// an unknown command, a missing suffix, or `@another_bot`. `reply` is the message
    /// the command answers, where a task takes its link or document from when the
    /// command has none; not with `-b` or `-i`, whose replied message holds the list
    /// that the caller reads.
    pub fn parse(&self, text: &str, reply: Option<&Reply>) -> Result<Option<Command>, CommandError> {
        let text = text.trim_start();
        let Some(body) = text.strip_prefix('/') else { return Ok(None) };
        let end = body.find(char::is_whitespace).unwrap_or(body.len());
        let (head, rest) = body.split_at(end);
        let (raw_name, mention) = match head.split_once('@') {
            Some((n, m)) => (n, Some(m)),
            None => (head, None),
        };
        if let Some(mention) = mention {
            match &self.bot_username {
                Some(ours) if ours.eq_ignore_ascii_case(mention.trim_start_matches('@')) => {}
                _ => return Ok(None),
            }
        }
        let lower = raw_name.to_ascii_lowercase();
        let Some(name) = lower.strip_suffix(self.suffix.as_str()) else { return Ok(None) };
        let name = self.aliases.get(name).map_or(name, String::as_str);
        if self.task_commands.contains(name) {
            let args = parse_task(name, words(rest)?, reply)?;
            Ok(Some(Command { name: name.to_string(), args: Args::Task(Box::new(args)) }))
        } else if self.commands.contains(name) {
            let words = words(rest)?.into_iter().map(|w| w.text).collect();
            Ok(Some(Command { name: name.to_string(), args: Args::Words(words) }))
        } else {
            Ok(None)
        }
    }

    /// Renders `cmd` as text this parser reads back to the same command (the replied
    /// document is not part of the text).
    pub fn render(&self, cmd: &Command) -> String {
        let mut out = format!("/{}{}", cmd.name, self.suffix);
        let mut push = |s: String| {
            out.push(' ');
            out.push_str(&s);
        };
        match &cmd.args {
            Args::Words(words) => words.iter().for_each(|w| push(quote(w, false))),
            Args::Task(t) => {
                if let Some(link) = &t.link {
                    push(quote(link, false));
                }
                if let Some(v) = &t.name {
                    push(format!("-n {}", quote(v, false)));
                }
                if t.select {
                    push("-s".into());
                }
                if let Some(v) = t.split_size {
                    push(format!("-sp {v}"));
                }
                if let Some(v) = &t.upload {
                    push(format!("-up {}", quote(v, false)));
                }
                match t.upload_as {
                    Some(UploadAs::Document) => push("-doc".into()),
                    Some(UploadAs::Media) => push("-med".into()),
                    None => {}
                }
                for (flag, value) in [("-z", &t.zip), ("-e", &t.extract)] {
                    match value {
                        Some(Some(pw)) => push(format!("{flag} {}", quote(pw, true))),
                        Some(None) => push(flag.into()),
                        None => {}
                    }
                }
                if let Some(v) = t.multi {
                    push(format!("-i {v}"));
                }
                if let Some(b) = t.bulk {
                    match (b.start, b.end) {
                        (None, None) => push("-b".into()),
                        (Some(s), None) => push(format!("-b {s}")),
                        (s, Some(e)) => {
                            push(format!("-b {}:{e}", s.map(|s| s.to_string()).unwrap_or_default()))
                        }
                    }
                }
                if let Some(v) = &t.same_dir {
                    push(format!("-m {}", quote(v, false)));
                }
            }
        }
        out
    }
}

impl CommandParserBuilder {
    /// The bot's username: `/cmd@this` is ours, `/cmd@other` is ignored.
    pub fn bot_username(mut self, name: impl Into<String>) -> Self {
        self.inner.bot_username = Some(name.into());
        self
    }

    /// A suffix every command must carry, e.g. `1` for `/mirror1` and `/m1`.
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.inner.suffix = suffix.into().to_ascii_lowercase();
        self
    }

    /// Adds an alias (`alias` → `command`).
    pub fn alias(mut self, alias: impl Into<String>, command: impl Into<String>) -> Self {
        self.inner.aliases.insert(alias.into().to_ascii_lowercase(), command.into().to_ascii_lowercase());
        self
    }

    /// Removes every alias, default ones included.
    pub fn clear_aliases(mut self) -> Self {
        self.inner.aliases.clear();
        self
    }

    /// Adds a command that takes words.
    pub fn command(mut self, name: impl Into<String>) -> Self {
        self.inner.commands.insert(name.into().to_ascii_lowercase());
        self
    }

    /// Adds a task command that takes a link and flags.
    pub fn task_command(mut self, name: impl Into<String>) -> Self {
        self.inner.task_commands.insert(name.into().to_ascii_lowercase());
        self
    }

    /// The parser.
    pub fn build(self) -> CommandParser {
        self.inner
    }
}

impl fmt::Display for UploadAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UploadAs::Document => "-doc",
            UploadAs::Media => "-med",
        })
    }
}

#[cfg(test)]
mod tests;
