//! `-s`: once a torrent's file list is known, the task waits, paused, for its files to be
//! chosen; the bot sends the chat a link to the selection page that the HTTP API serves
//! (the task's key in the link's fragment, which browsers never send to a server).

use std::collections::HashSet;

use mltb_store::Backend;
use mltb_telegram::format::escape;
use tokio_util::sync::CancellationToken;

use super::Bot;

/// The link to task `id`'s selection page under `base`.
pub(super) fn link(base: &str, id: i64, key: &str) -> String {
    format!("{}/select/{id}#k={key}", base.trim_end_matches('/'))
}

/// The message that carries the link.
fn message(id: i64, name: Option<&str>, link: &str) -> String {
    let name = name.map(|n| format!(" <code>{}</code>", escape(n))).unwrap_or_default();
    format!(
        "📂 Task <b>#{id}</b>{name}: choose the files to download.\n<a href=\"{}\">Open the file list</a>. The download starts when you submit it there; the link stops working then, or when the task is cancelled.",
        escape(link)
    )
}

/// Sends each task that starts waiting for a choice its link, once, until `stop`.
pub(super) async fn send_links<B: Backend>(bot: Bot<B>, stop: CancellationToken) {
    let engine = bot.inner.engine.clone();
    let mut changes = engine.changes();
    let mut sent: HashSet<i64> = HashSet::new();
    loop {
        let choosing: Vec<_> = engine.tasks().into_iter().filter(|v| v.choosing).collect();
        sent.retain(|id| choosing.iter().any(|v| v.id == *id));
        for view in &choosing {
            if sent.contains(&view.id) {
                continue;
            }
            let (Some(base), Some(key)) = (bot.pages(), engine.choice_key(view.id)) else { continue };
            let text = message(view.id, view.name.as_deref(), &link(&base, view.id, &key));
            if bot.reply(view.chat, None, text).await.is_some() {
                tracing::info!(task = view.id, "sent the link to the file-selection page");
                sent.insert(view.id);
            }
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_carries_the_key_in_its_fragment() {
        assert_eq!(link("http://127.0.0.1:8080/", 7, "ab"), "http://127.0.0.1:8080/select/7#k=ab");
        assert_eq!(
            link("https://bot.example.org/mltb", 7, "ab"),
            "https://bot.example.org/mltb/select/7#k=ab"
        );
        let m = message(7, Some("<pack>"), "https://x/select/7#k=ab&c");
        assert!(m.contains("<code>&lt;pack&gt;</code>"), "{m}");
        assert!(m.contains("href=\"https://x/select/7#k=ab&amp;c\""), "{m}");
    }
}
