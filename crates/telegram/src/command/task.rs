//! Parsing a task command's words: a link and the Python bot's flags.

use super::lex::Word;
use super::size::parse_size;
use super::{BulkRange, CommandError, KNOWN_FLAGS, Reply, TaskArgs, UploadAs};

fn is_flag(w: &Word) -> bool {
    !w.quoted
        && w.text.len() > 1
        && w.text.starts_with('-')
        && w.text[1..].starts_with(|c: char| c.is_alphabetic())
}

fn looks_like_link(text: &str) -> bool {
    text.contains("://") || text.starts_with("magnet:")
}

pub(super) fn parse_task(
    command: &str,
    words: Vec<Word>,
    reply: Option<&Reply>,
) -> Result<TaskArgs, CommandError> {
    let mut t = TaskArgs::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if !is_flag(w) {
            if t.link.is_some() {
                return Err(CommandError::UnexpectedArgument { arg: w.text.clone() });
            }
            t.link = Some(w.text.clone());
            continue;
        }
        let flag: &'static str = match w.text.as_str() {
            "-n" => "-n",
            "-s" => "-s",
            "-sp" => "-sp",
            "-up" => "-up",
            "-doc" => "-doc",
            "-med" => "-med",
            "-z" => "-z",
            "-e" => "-e",
            "-i" => "-i",
            "-b" => "-b",
            "-m" => "-m",
            other => {
                return Err(CommandError::UnknownFlag {
                    flag: other.to_string(),
                    command: command.to_string(),
                    known: KNOWN_FLAGS,
                });
            }
        };
        if seen.contains(&flag) {
            return Err(CommandError::Duplicate { flag: flag.to_string() });
        }
        seen.push(flag);
        // Words up to the next flag, joined by one space.
        let mut take_words = |expected: &'static str| -> Result<String, CommandError> {
            let start = i;
            while i < words.len() && !is_flag(&words[i]) {
                i += 1;
            }
            let value = words[start..i].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
            if i == start || value.is_empty() {
                return Err(CommandError::MissingValue { flag: flag.to_string(), expected });
            }
            Ok(value)
        };
        match flag {
            "-n" => t.name = Some(file_name(take_words("a name")?)?),
            "-up" => t.upload = Some(take_words("an upload destination like remote:path")?),
            "-m" => t.same_dir = Some(take_words("a folder name")?),
            "-s" => t.select = true,
            "-doc" | "-med" => {
                if t.upload_as.is_some() {
                    return Err(CommandError::Conflict { first: "-doc", second: "-med" });
                }
                t.upload_as = Some(if flag == "-doc" { UploadAs::Document } else { UploadAs::Media });
            }
            "-sp" | "-i" => {
                let expected = if flag == "-sp" { "a size like 500mb" } else { "a number of links like 3" };
                let Some(v) = words.get(i).filter(|w| !is_flag(w)) else {
                    return Err(CommandError::MissingValue { flag: flag.to_string(), expected });
                };
                i += 1;
                let invalid =
                    || CommandError::InvalidValue { flag: flag.to_string(), expected, got: v.text.clone() };
                if flag == "-sp" {
                    t.split_size = Some(parse_size(&v.text).ok_or_else(invalid)?);
                } else {
                    t.multi = Some(v.text.parse().ok().filter(|n| *n >= 1).ok_or_else(invalid)?);
                }
            }
            "-z" | "-e" => {
                let password = match words.get(i) {
                    Some(v) if v.quoted || (!is_flag(v) && !looks_like_link(&v.text)) => {
                        i += 1;
                        Some(v.text.clone())
                    }
                    _ => None,
                };
                if flag == "-z" { t.zip = Some(password) } else { t.extract = Some(password) }
            }
            "-b" => {
                let mut range = BulkRange::default();
                if let Some(v) = words.get(i).filter(|v| !v.quoted && is_range(&v.text)) {
                    i += 1;
                    let invalid = || CommandError::InvalidValue {
                        flag: "-b".into(),
                        expected: "a range like 2:10, :10 or 2",
                        got: v.text.clone(),
                    };
                    let (s, e) =
                        v.text.split_once(':').map_or((v.text.as_str(), None), |(s, e)| (s, Some(e)));
                    range.start = if s.is_empty() { None } else { Some(s.parse().map_err(|_| invalid())?) };
                    range.end = match e {
                        Some("") | None => None,
                        Some(e) => Some(e.parse().map_err(|_| invalid())?),
                    };
                }
                t.bulk = Some(range);
            }
            _ => unreachable!("every flag is matched above"),
        }
    }
    // With -b or -i the replied message is the list, not a link: the bot reads it.
    if t.link.is_none() && t.bulk.is_none() && t.multi.is_none() {
        match reply {
            Some(Reply::Text(text)) => t.link = text.split_whitespace().next().map(str::to_string),
            Some(Reply::Document(d)) => t.document = Some(d.clone()),
            None => {}
        }
    }
    Ok(t)
}

/// A `-n` name: one file name, since the download is written under it in the task's own
/// folder (the engine refuses the others too, but only once the task has been queued).
fn file_name(name: String) -> Result<String, CommandError> {
    if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(CommandError::InvalidValue {
            flag: "-n".into(),
            expected: "a file name without '/', '\\' or NUL, other than '.' and '..'",
            got: name,
        });
    }
    Ok(name)
}

fn is_range(text: &str) -> bool {
    !text.is_empty()
        && text != ":"
        && text.chars().all(|c| c.is_ascii_digit() || c == ':')
        && text.matches(':').count() <= 1
}
