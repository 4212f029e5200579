//! `-m folder` (same directory): the links of a `-b` list, of `-i` messages or a single
//! link gathered by one task into one folder and uploaded together, against the whole bot
//! (simulator, real aria2c, real rclone, SQLite, a loopback file server).

mod support;

use sha2::{Digest, Sha256};
use support::{CHAT, Harness, USER, data};

fn sha(len: usize) -> String {
    format!("{:x}", Sha256::digest(data(len)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_with_m_is_one_task_whose_files_arrive_together_and_clashing_names_are_kept_apart() {
    let h = Harness::start(&[], &[("/x/a.bin", 3000), ("/y/a.bin", 5000), ("/c.bin", 700), ("/d.bin", 800)])
        .await;
    let list = format!(
        "{}\n{}\n{} -sp 1mb\n{} -m other\n{} -n renamed.bin",
        h.url("/x/a.bin"),
        h.url("/y/a.bin"),
        h.url("/c.bin"),
        h.url("/d.bin"),
        h.url("/c.bin"),
    );
    h.sim.send_text(CHAT, USER, &list);
    let id = h.user_message(CHAT, &list);

    let mark = h.mark();
    h.sim.reply_text(CHAT, USER, "/leech -b -m holiday", id);
    let reply = h.reply(CHAT, mark, "the bulk summary", |t| t.starts_with("Bulk:")).await;
    assert!(
        reply.starts_with("Bulk: 3 links gathered into task #1, folder holiday, 2 lines skipped, from lines 1 to 5 of the list.\nGathered: line 1, line 2, line 5\nSkipped 2:\nline 3: ⚠️ with -m the links share one upload: this one's flags (-sp, -up, -z, -e, -doc, -med) differ from the first's; send it in a command of its own\nline 4: ⚠️ -m goes on the command, not on a line"),
        "{reply}"
    );
    h.idle().await;
    let task = h.store().task(1).await.unwrap().unwrap();
    assert_eq!(task.state, mltb_store::TaskState::Completed, "{:?}", task.error);
    assert_eq!(task.name.as_deref(), Some("holiday"));
    let files = h.store().task_files(1).await.unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["holiday/a (1).bin", "holiday/a.bin", "holiday/renamed.bin"], "one folder, no clash");

    let sent: Vec<(String, String)> = h
        .sim
        .sent()
        .into_iter()
        .filter(|o| o.method == "sendDocument" && o.chat_id == CHAT)
        .filter_map(|o| o.file.map(|f| (f.name, f.sha256)))
        .collect();
    let mut sent = sent;
    sent.sort();
    assert_eq!(
        sent,
        [
            ("a (1).bin".to_owned(), sha(5000)),
            ("a.bin".to_owned(), sha(3000)),
            ("renamed.bin".to_owned(), sha(700)),
        ],
        "each link's bytes, once"
    );
    let done =
        h.reply(CHAT, mark, "the completion message", |t| t.contains("holiday") && t.contains("#1")).await;
    assert!(!done.contains("failed"), "{done}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_link_with_m_is_mirrored_inside_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let dest = format!(":local:{}", cloud.display());
    let h = Harness::start(&[("MLTB_MIRROR_DESTINATION", &dest)], &[("/doc.pdf", 4321)]).await;
    let mark = h.mark();
    h.sim.send_text(CHAT, USER, &format!("/mirror {} -m ../../escape", h.url("/doc.pdf")));
    let reply = h.reply(CHAT, mark, "the queued reply", |t| t.starts_with("Task #1 queued")).await;
    assert!(reply.contains("_.._.._escape"), "the folder is one safe name: {reply}");
    h.idle().await;
    let landed = std::fs::read(cloud.join("_.._.._escape/doc.pdf"))
        .unwrap_or_else(|e| panic!("the mirror did not land in its folder under {}: {e}", cloud.display()));
    assert_eq!(landed, data(4321));

    let mark = h.mark();
    h.sim.send_text(CHAT, USER, &format!("/mirror {} -m", h.url("/doc.pdf")));
    let reply = h.reply(CHAT, mark, "the refusal", |t| t.starts_with("⚠️")).await;
    assert!(reply.contains("-m"), "{reply}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_needs_the_selection_page_and_does_not_go_with_m() {
    let h = Harness::start(&[], &[]).await;
    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
    // The API is not serving pages here: there is nowhere to choose the files.
    let mark = h.mark();
    h.sim.send_text(CHAT, USER, &format!("/leech -s {magnet}"));
    let reply = h.reply(CHAT, mark, "the refusal", |t| t.contains("-s")).await;
    assert!(reply.contains("-s needs the file-selection page"), "{reply}");
    h.bot.serve_pages_at("http://127.0.0.1:9");
    let mark = h.mark();
    h.sim.send_text(CHAT, USER, &format!("/leech {magnet} -s -m pack"));
    let reply = h.reply(CHAT, mark, "the refusal", |t| t.contains("-s")).await;
    assert!(reply.contains("it cannot be used with -m"), "{reply}");
    assert!(h.store().task(1).await.unwrap().is_none(), "no task was created");
}
