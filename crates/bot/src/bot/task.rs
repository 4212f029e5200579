//! `/mirror` and `/leech`: one task from a link or a `.torrent`, or many with `-b`
//! (bulk) and `-i` (multi), see [`super::batch`]; with `-m folder`, one task that gathers
//! the links into that folder and uploads them together ([`gathered`]).

use mltb_engine::{Link, LinkSource, TaskOptions};
use mltb_store::{Backend, NewTask, Source, Task, TaskKind};
use mltb_telegram::command::{Document, TaskArgs, UploadAs};
use mltb_telegram::format::escape;

use super::commands::{Ctx, shorten};
use super::{Bot, batch, settings};

/// The largest `.torrent` accepted (Telegram's cloud API serves at most 20 MB anyway).
const MAX_TORRENT: u64 = 10 << 20;

/// `/mirror` and `/leech`: the answer to send.
pub(super) async fn task<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    name: &str,
    args: TaskArgs,
    document: Option<Document>,
) -> String {
    let kind = if name == "mirror" { TaskKind::Mirror } else { TaskKind::Leech };
    match (args.bulk, args.multi) {
        (Some(_), Some(_)) => {
            return "⚠️ -b and -i cannot be used together: -b takes the lines of one message or file, -i several messages.".into();
        }
        (Some(range), None) => return batch::bulk(bot, ctx, name, kind, args, range, document).await,
        (None, Some(count)) => return batch::multi(bot, ctx, name, kind, args, count).await,
        (None, None) => {}
    }
    let mut task = match prepare(bot, ctx, name, kind, &args, document.as_ref()).await {
        Ok(t) => t,
        Err(html) => return html,
    };
    if let Some(folder) = &args.same_dir {
        task = match gathered(folder, vec![task]) {
            Ok(t) => t,
            Err(html) => return html,
        };
    }
    match submit(bot, &task).await {
        Ok(t) => {
            bot.inner.board.refresh(ctx.chat);
            format!(
                "Task <b>#{}</b> queued: {} {}.\n/status shows it; /cancel {} stops it.",
                t.id,
                if kind == TaskKind::Mirror { "mirror" } else { "leech" },
                escape(t.name.as_deref().unwrap_or("(name when known)")),
                t.id
            )
        }
        Err(html) => html,
    }
}

/// One task that gathers the links of `tasks` (each checked by [`prepare`], all with the
/// same options) into a folder named `folder` (`-m`): downloaded one after another,
/// uploaded together. The first task's kind and options are the gathered task's.
pub(super) fn gathered(folder: &str, tasks: Vec<NewTask>) -> Result<NewTask, String> {
    let Some(first) = tasks.first() else {
        return Err("⚠️ -m: no link to gather".into());
    };
    if folder.trim().is_empty() {
        return Err("⚠️ -m: expected a folder name, as in <code>-m holiday photos</code>".into());
    }
    let folder = mltb_engine::names::folder_name(folder.trim());
    let mut options =
        TaskOptions::from_json(&first.options).map_err(|e| format!("⚠️ {}", escape(&e.to_string())))?;
    options.links = tasks
        .iter()
        .map(|t| {
            let link = Link::new(LinkSource::from(&t.source));
            match &t.name {
                Some(name) => link.name(name.clone()),
                None => link,
            }
        })
        .collect();
    Ok(NewTask {
        chat: first.chat,
        user: first.user,
        source: first.source.clone(),
        kind: first.kind,
        name: Some(folder),
        options: options.to_json(),
    })
}

/// Checks one task's link or document and flags, and builds it; otherwise the answer
/// (HTML) that says what is wrong. A `.torrent` document is fetched and stored here.
pub(super) async fn prepare<B: Backend>(
    bot: &Bot<B>,
    ctx: &Ctx,
    name: &str,
    kind: TaskKind,
    args: &TaskArgs,
    document: Option<&Document>,
) -> Result<NewTask, String> {
    let source = match (&args.link, document) {
        (Some(link), _) => source_of(link).map_err(|e| format!("⚠️ {}", escape(&e)))?,
        (None, Some(doc)) => torrent_document(bot, doc).await.map_err(|e| format!("⚠️ {}", escape(&e)))?,
        (None, None) => {
            return Err(format!(
                "⚠️ /{name} needs a link: <code>/{name} https://…</code>, a magnet, or a reply to a message holding a link or a .torrent file."
            ));
        }
    };
    // The sender's own defaults (`/usettings`), under the task's flags.
    let mine = bot
        .inner
        .store
        .settings(ctx.user)
        .await
        .map_err(|e| format!("⚠️ Your settings could not be read: {}", escape(&e.to_string())))?;
    let upload = args.upload.clone().or_else(|| mine.upload_dest.clone());
    if let (Some(dest), TaskKind::Mirror) = (&upload, kind) {
        // Checked again at use: the sender may no longer be allowed a destination saved
        // earlier (an inline remote saved while sudo).
        let flag = if args.upload.is_some() { "-up" } else { "your destination (/usettings dest)" };
        settings::check_destination(ctx, flag, dest)?;
    }
    if kind == TaskKind::Mirror && upload.is_none() && bot.inner.config.mirror.destination.is_none() {
        return Err("⚠️ No mirror destination: give one with <code>-up remote:path</code>, set yours with <code>/usettings dest remote:path</code>, or set mirror.destination in the config.".into());
    }
    let split_size = args.split_size.or(mine.split_size);
    if let Some(split) = split_size {
        let flag = if args.split_size.is_some() { "-sp" } else { "your split size (/usettings split)" };
        settings::check_split(bot, split).map_err(|e| format!("⚠️ {flag}: {e}"))?;
    }
    let mut options = TaskOptions::default();
    if args.select {
        if args.same_dir.is_some() {
            return Err("⚠️ -s chooses the files of one torrent; it cannot be used with -m.".into());
        }
        if bot.pages().is_none() {
            return Err("⚠️ -s needs the file-selection page, which the bot's HTTP API serves: it is off here ([api] enabled = false).".into());
        }
        options.choose = true;
    }
    options.split_size = split_size;
    if kind == TaskKind::Leech {
        options.name_prefix = mine.name_prefix.clone();
    }
    options.upload = upload;
    options.extract = args.extract.clone().map(mltb_engine::Pack::new);
    options.zip = args.zip.clone().map(mltb_engine::Pack::new);
    options.as_media = match (args.upload_as, mine.as_document) {
        (Some(upload_as), _) => matches!(upload_as, UploadAs::Media),
        (None, Some(as_document)) => !as_document,
        (None, None) => bot.inner.config.leech.as_media,
    };
    Ok(NewTask {
        chat: ctx.chat,
        user: ctx.user,
        source,
        kind,
        name: args.name.clone(),
        options: options.to_json(),
    })
}

/// Hands a task to the engine; otherwise the answer (HTML) that says why it was not
/// created.
pub(super) async fn submit<B: Backend>(bot: &Bot<B>, task: &NewTask) -> Result<Task, String> {
    match bot.inner.engine.submit(task).await {
        Ok(t) => Ok(t),
        Err(e) if matches!(e.kind(), mltb_engine::ErrorKind::Refused { .. }) => {
            Err(format!("⛔ Refused: {}", escape(&e.to_string())))
        }
        Err(e) => Err(format!("⚠️ The task could not be created: {}", escape(&e.to_string()))),
    }
}

/// A link's source, or why it is not a link.
pub(super) fn source_of(link: &str) -> Result<Source, String> {
    let link = link.trim();
    if link.len() > 4096 {
        return Err("the link is longer than 4096 characters".into());
    }
    if link.to_ascii_lowercase().starts_with("magnet:?") {
        return Ok(Source::Magnet(link.to_owned()));
    }
    match url::Url::parse(link) {
        Ok(u) if matches!(u.scheme(), "http" | "https" | "ftp" | "sftp") && u.host_str().is_some() => {
            Ok(Source::Url(link.to_owned()))
        }
        Ok(u) => {
            Err(format!("unsupported link scheme {:?}: expected http(s)://, ftp:// or magnet:", u.scheme()))
        }
        Err(_) => {
            Err(format!("{:?} is not a link: expected http(s)://…, ftp://… or magnet:?…", shorten(link)))
        }
    }
}

/// A `.torrent` document, downloaded into the data directory.
async fn torrent_document<B: Backend>(bot: &Bot<B>, doc: &Document) -> Result<Source, String> {
    let name = doc.file_name.as_deref().unwrap_or("");
    if !name.to_ascii_lowercase().ends_with(".torrent") {
        return Err(format!(
            "{:?} is not a .torrent file: send a link, a magnet, or a .torrent file",
            shorten(name)
        ));
    }
    let bytes = bot
        .inner
        .client
        .download_file(&doc.file_id, MAX_TORRENT)
        .await
        .map_err(|e| format!("the .torrent could not be fetched from Telegram: {e}"))?;
    if bytes.first() != Some(&b'd') {
        return Err(format!(
            "{:?} is not a torrent (it does not start with a bencoded dictionary)",
            shorten(name)
        ));
    }
    let dir = bot.inner.config.data_dir.join("torrents");
    sweep_stored_torrents(bot, &dir).await;
    let path = dir.join(format!("{}.torrent", mltb_engine::DownloadId::random()));
    tokio::fs::create_dir_all(&dir).await.map_err(|e| format!("cannot store the .torrent: {e}"))?;
    tokio::fs::write(&path, &bytes).await.map_err(|e| format!("cannot store the .torrent: {e}"))?;
    Ok(Source::Torrent(path.display().to_string()))
}

/// How old a stored `.torrent` must be before a sweep may remove it: a file is written
/// before its task is created, so a younger one may belong to a task on its way.
const TORRENT_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the `.torrent` files the bot stored in `dir` that no unfinished task uses any
/// more (their tasks ended), leaving files younger than [`TORRENT_GRACE`]. Run before
/// storing a new one, so the directory holds what live tasks need, plus the last hour's.
async fn sweep_stored_torrents<B: Backend>(bot: &Bot<B>, dir: &std::path::Path) {
    let live = match bot.inner.store.unfinished_tasks().await {
        Ok(tasks) => tasks,
        Err(e) => {
            tracing::debug!(error = %e, "stored torrents not swept: the store did not answer");
            return;
        }
    };
    // A task names its torrent in its source, or in its options (a gathered task's links).
    let used: Vec<String> = live.iter().map(|t| format!("{:?} {}", t.task.source, t.task.options)).collect();
    let dir = dir.to_path_buf();
    let removed = tokio::task::spawn_blocking(move || {
        unused_torrents(&dir, |name| used.iter().any(|u| u.contains(name)), TORRENT_GRACE)
    })
    .await
    .unwrap_or_default();
    if removed > 0 {
        tracing::info!(removed, "stored .torrent files of ended tasks removed");
    }
}

/// Removes `*.torrent` files in `dir` older than `grace` whose name `used` does not
/// claim; returns how many.
fn unused_torrents(dir: &std::path::Path, used: impl Fn(&str) -> bool, grace: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".torrent") || used(&name) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= grace);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_torrents_go_once_unused_and_old() {
        let dir = tempfile::tempdir().unwrap();
        let aged = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for name in ["live.torrent", "ended.torrent", "fresh.torrent", "notes.txt"] {
            let f = std::fs::File::create(dir.path().join(name)).unwrap();
            if name != "fresh.torrent" {
                f.set_modified(aged).unwrap();
            }
        }
        let removed = unused_torrents(dir.path(), |n| n == "live.torrent", TORRENT_GRACE);
        assert_eq!(removed, 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["fresh.torrent", "live.torrent", "notes.txt"]);
        assert_eq!(unused_torrents(&dir.path().join("missing"), |_| false, TORRENT_GRACE), 0);
    }

    #[test]
    fn links_are_told_apart_from_other_text() {
        assert!(matches!(source_of("https://x.test/a.iso"), Ok(Source::Url(_))));
        assert!(matches!(source_of("ftp://x.test/a"), Ok(Source::Url(_))));
        assert!(matches!(source_of("magnet:?xt=urn:btih:abc"), Ok(Source::Magnet(_))));
        let e = source_of("hello world").unwrap_err();
        assert!(e.contains("is not a link") && e.contains("magnet:"), "{e}");
        let e = source_of("file:///etc/passwd").unwrap_err();
        assert!(e.contains("unsupported link scheme \"file\""), "{e}");
        assert!(source_of(&format!("https://x.test/{}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn a_gathered_task_holds_every_link_with_its_own_name_in_a_safe_folder() {
        let task = |source: Source, name: Option<&str>| NewTask {
            chat: 1,
            user: 2,
            source,
            kind: TaskKind::Leech,
            name: name.map(str::to_owned),
            options: {
                let mut o = TaskOptions::default();
                o.split_size = Some(5 << 20);
                o.to_json()
            },
        };
        let gathered = gathered(
            " ../holiday ",
            vec![
                task(Source::Url("https://x.test/a.jpg".into()), None),
                task(Source::Torrent("/data/torrents/t.torrent".into()), Some("b.iso")),
            ],
        )
        .unwrap();
        assert_eq!(gathered.name.as_deref(), Some("_.._holiday"), "no separator survives, nor a leading dot");
        assert_eq!(gathered.source, Source::Url("https://x.test/a.jpg".into()), "the first link shows");
        let options = TaskOptions::from_json(&gathered.options).unwrap();
        assert_eq!(options.split_size, Some(5 << 20), "the first task's options stay");
        assert_eq!(
            options.links,
            [
                Link::new(LinkSource::Url("https://x.test/a.jpg".into())),
                Link::new(LinkSource::Torrent("/data/torrents/t.torrent".into())).name("b.iso"),
            ]
        );
        assert!(gathered_err("  ").contains("expected a folder name"));
        assert!(super::gathered("f", Vec::new()).unwrap_err().contains("no link to gather"));
    }

    fn gathered_err(folder: &str) -> String {
        let t = NewTask {
            chat: 1,
            user: 1,
            source: Source::Magnet("magnet:?xt=urn:btih:00".into()),
            kind: TaskKind::Mirror,
            name: None,
            options: serde_json::Value::Null,
        };
        super::gathered(folder, vec![t]).unwrap_err()
    }
}
