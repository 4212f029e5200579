//! `/usettings`: a user's own defaults (split size, leech as document or media, a prefix
//! for leeched files' names, mirror destination) are saved, shown, applied to their tasks under the task's flags, and
//! checked as the flags are. Against the whole bot (simulator, real aria2c, SQLite).

mod support;

use support::{CHAT, Harness, USER};

/// `USER`'s answer to `command` in their chat: the first that is not the status board.
async fn ask(h: &Harness, command: &str) -> String {
    let mark = h.mark();
    h.sim.send_text(CHAT, USER, command);
    h.reply(CHAT, mark, command, |t| !t.starts_with("Tasks: ")).await
}

/// Leeches `path` (with `flags`) and waits for its end; the documents it sent, by name.
async fn leech(h: &Harness, path: &str, flags: &str) -> Vec<String> {
    let before = h.documents(CHAT).len();
    // Marked before the command: the task may end before its queued answer is read.
    let mark = h.mark();
    let queued = ask(h, &format!("/leech {} {flags}", h.url(path))).await;
    assert!(queued.contains(" queued"), "{queued}");
    h.reply(CHAT, mark, "the task's end", |t| t.starts_with("Done: ")).await;
    h.documents(CHAT).split_off(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_settings_are_saved_shown_applied_under_the_flags_and_checked() {
    let h = Harness::start(&[], &[("/a.bin", 3000), ("/b.bin", 3001), ("/c.bin", 3002)]).await;
    let shown = ask(&h, "/usettings").await;
    assert!(shown.starts_with("Your settings\nsplit: "), "{shown}");
    assert!(shown.contains("(the bot's)\nas: documents (the bot's)\nprefix: none\ndest: none"), "{shown}");

    let saved = ask(&h, "/us split 1kb").await;
    assert!(saved.starts_with("Saved.") && saved.contains("split: 1.0 KiB (yours)"), "{saved}");
    assert_eq!(
        leech(&h, "/a.bin", "").await,
        ["a.bin.001", "a.bin.002", "a.bin.003"],
        "the user's split size"
    );
    assert_eq!(
        leech(&h, "/b.bin", "-sp 2kb").await,
        ["b.bin.001", "b.bin.002"],
        "the flag's, over the user's"
    );

    // Checked as the flags are; a refused change saves nothing.
    let refused = ask(&h, "/us dest :local:/tmp/anywhere").await;
    assert!(refused.starts_with("⛔ dest: inline rclone remotes"), "{refused}");
    let refused = ask(&h, "/us split 100tb").await;
    assert!(refused.starts_with("⚠️ split: expected at most"), "{refused}");
    let refused = ask(&h, "/us colour red").await;
    assert!(refused.starts_with("⚠️ expected split, as, prefix or dest, got \"colour\""), "{refused}");
    let refused = ask(&h, "/us prefix a/b").await;
    assert!(refused.starts_with("⚠️ prefix: a name cannot hold '/'"), "{refused}");
    let refused = ask(&h, "/us as loud").await;
    assert!(refused.starts_with("⚠️ as: expected doc or media"), "{refused}");
    let mine = h.store().settings(USER).await.unwrap();
    assert_eq!((mine.split_size, mine.as_document, mine.upload_dest), (Some(1024), None, None));

    let saved = ask(&h, "/us as media").await;
    assert!(saved.contains("as: media (yours)"), "{saved}");
    let saved = ask(&h, "/us dest gdrive:mltb").await;
    assert!(saved.contains("dest: gdrive:mltb (yours)"), "{saved}");
    let saved = ask(&h, "/us split default").await;
    assert!(saved.contains("(the bot's)\nas: media (yours)"), "{saved}");
    let mine = h.store().settings(USER).await.unwrap();
    assert_eq!(
        (mine.split_size, mine.as_document, mine.upload_dest.as_deref()),
        (None, Some(false), Some("gdrive:mltb"))
    );
    // Quotes keep the trailing space.
    let saved = ask(&h, "/us prefix \"mltb - \"").await;
    assert!(saved.contains("prefix: \"mltb - \" (yours)"), "{saved}");
    // Back to the bot's split size (the upload limit): one document, its name prefixed.
    assert_eq!(leech(&h, "/c.bin", "-doc").await, ["mltb - c.bin"]);
    h.shutdown().await;
}
