//! `/usettings` (`/us`): a user's own defaults for their tasks, as the Python bot's user
//! settings: the leech split size, leech as documents or media, a prefix for leeched
//! files' names, and the mirror destination. A task's flags (`-sp`, `-doc` / `-med`,
//! `-up`) override them; they override the bot's config. Kept in the store
//! ([`UserSettings`]), so they survive a restart and hold on every instance.

use mltb_store::{Backend, UserSettings};
use mltb_telegram::command::parse_size;
use mltb_telegram::format::{escape, human_size};

use super::Bot;
use super::commands::{Ctx, shorten};

/// What `/usettings` answers without a setting to change: the keys and their values.
const USAGE: &str = "<code>/usettings split 500mb</code> · <code>/usettings as doc</code> (or <code>media</code>) · <code>/usettings prefix \"[mltb] \"</code> · <code>/usettings dest remote:path</code>; <code>default</code> as the value goes back to the bot's.";

/// The longest name prefix, in characters: room is left for the file's own name.
const MAX_PREFIX: usize = 64;

/// `/usettings [key value]`: shows the sender's settings, or changes one.
pub(super) async fn user_settings<B: Backend>(bot: &Bot<B>, ctx: &Ctx, words: &[String]) -> String {
    let store = &bot.inner.store;
    let mut settings = match store.settings(ctx.user).await {
        Ok(s) => s,
        Err(e) => return format!("⚠️ Your settings could not be read: {}", escape(&e.to_string())),
    };
    let Some((key, value)) = words.split_first() else {
        return show(bot, &settings);
    };
    // Words as the command's lexer gave them: quotes keep spaces (`prefix "[mltb] "`).
    let value = value.join(" ");
    if let Err(why) = set(bot, ctx, &mut settings, key, &value) {
        return format!("{why}\n{USAGE}");
    }
    match store.put_settings(ctx.user, &settings).await {
        Ok(()) => format!("Saved.\n\n{}", show(bot, &settings)),
        Err(e) => format!("⚠️ Your settings could not be saved: {}", escape(&e.to_string())),
    }
}

/// Changes the setting `key` to `value` ("default": the bot's); why not, in HTML (led
/// by ⚠️ or ⛔).
fn set<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    settings: &mut UserSettings,
    key: &str,
    value: &str,
) -> Result<(), String> {
    let default = value.eq_ignore_ascii_case("default");
    match key.to_ascii_lowercase().as_str() {
        "split" | "sp" => {
            settings.split_size = if default {
                None
            } else {
                let size = parse_size(value)
                    .ok_or_else(|| format!("⚠️ split: expected a size like 500mb, got {}", quoted(value)))?;
                check_split(bot, size).map_err(|e| format!("⚠️ split: {e}"))?;
                Some(size)
            };
        }
        "as" => {
            settings.as_document = match value.to_ascii_lowercase().as_str() {
                "default" => None,
                "doc" | "document" => Some(true),
                "media" | "med" => Some(false),
                _ => return Err(format!("⚠️ as: expected doc or media, got {}", quoted(value))),
            };
        }
        "prefix" => {
            settings.name_prefix = if default {
                None
            } else {
                check_prefix(value).map_err(|e| format!("⚠️ prefix: {e}"))?;
                Some(value.to_owned())
            };
        }
        "dest" | "up" => {
            settings.upload_dest = if default {
                None
            } else {
                check_destination(ctx, "dest", value)?;
                Some(value.to_owned())
            };
        }
        other => return Err(format!("⚠️ expected split, as, prefix or dest, got {}", quoted(other))),
    }
    Ok(())
}

/// `value` quoted for an answer (HTML), shortened.
fn quoted(value: &str) -> String {
    escape(&format!("{:?}", shorten(value)))
}

/// A prefix for leeched files' names: part of one name (no `/` or `\`, no control
/// characters), at most [`MAX_PREFIX`] characters; why not, in HTML.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let n = prefix.chars().count();
    if n > MAX_PREFIX {
        return Err(format!("expected at most {MAX_PREFIX} characters, got {n}"));
    }
    if let Some(c) = prefix.chars().find(|c| matches!(c, '/' | '\\') || c.is_control()) {
        return Err(format!("a name cannot hold {}", escape(&format!("{c:?}"))));
    }
    Ok(())
}

/// A split size a leech may use: at most the Bot API's upload limit; why not, in HTML.
pub(super) fn check_split<B: Backend>(bot: &Bot<B>, split: u64) -> Result<(), String> {
    let limit = bot.inner.config.upload_limit();
    if split > limit {
        return Err(format!(
            "expected at most {} (the Bot API's upload limit), got {}",
            human_size(limit),
            human_size(split)
        ));
    }
    Ok(())
}

/// A mirror destination the sender may use: an rclone `remote:path`, and an inline
/// remote (`:backend:…`, which can write anywhere the bot can) only for the owner and
/// sudo users. Why not, in HTML after `what` (the flag or setting), led by ⚠️ for a
/// malformed destination and ⛔ for one the sender may not use.
pub(super) fn check_destination(ctx: &Ctx, what: &str, dest: &str) -> Result<(), String> {
    if let Err(e) = mltb_engine::mirror::MirrorTarget::parse(dest) {
        return Err(format!("⚠️ {what}: {}", escape(&e.to_string())));
    }
    if dest.trim_start().starts_with(':') && !ctx.access.is_admin() {
        return Err(format!(
            "⛔ {what}: inline rclone remotes (<code>:backend:…</code>) are for the owner and sudo users; use a remote from the bot's rclone config (<code>remote:path</code>)."
        ));
    }
    Ok(())
}

/// The settings in effect for the sender, each with where it comes from.
fn show<B: Backend>(bot: &Bot<B>, s: &UserSettings) -> String {
    let config = &bot.inner.config;
    let split = match s.split_size {
        Some(n) => format!("{} (yours)", human_size(n)),
        None => format!("{} (the bot's)", human_size(config.leech_split_size())),
    };
    let media = |m: bool| if m { "media" } else { "documents" };
    let upload_as = match s.as_document {
        Some(doc) => format!("{} (yours)", media(!doc)),
        None => format!("{} (the bot's)", media(config.leech.as_media)),
    };
    let prefix = match &s.name_prefix {
        // Quoted: a prefix may end in a space.
        Some(p) => format!("<code>\"{}\"</code> (yours)", escape(p)),
        None => "none".into(),
    };
    let dest = match (&s.upload_dest, &config.mirror.destination) {
        (Some(d), _) => format!("<code>{}</code> (yours)", escape(d)),
        (None, Some(d)) => format!("<code>{}</code> (the bot's)", escape(d)),
        (None, None) => "none: give one with -up, or set yours".into(),
    };
    format!(
        "<b>Your settings</b>\nsplit: {split}\nas: {upload_as}\nprefix: {prefix}\ndest: {dest}\n\nA task's flags (-sp, -doc / -med, -up) override them.\n{USAGE}"
    )
}
