//! `-b` (bulk): a task per line of the replied message or `.txt` file, against the whole
//! bot (simulator, real aria2c, SQLite, a loopback file server).

mod support;

use support::{CHAT, Harness, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_queues_each_good_line_and_names_each_bad_one() {
    let h = Harness::start(
        &[("MLTB_COMMANDS_BULK_LIMIT", "4")],
        &[("/a.bin", 3000), ("/b.bin", 4000), ("/c.bin", 100)],
    )
    .await;
    let list = format!(
        "{}\nnot-a-link\n\n  {} -n renamed.bin\nhttp://127.0.0.2:1/secret\n{} -sp lots\n{}",
        h.url("/a.bin"),
        h.url("/b.bin"),
        h.url("/c.bin"),
        h.url("/c.bin")
    );
    h.sim.send_text(CHAT, USER, &list);
    let id = h.user_message(CHAT, &list);

    // Lines 1 to 5 hold four items (line 3 is blank); the limit of four leaves 6 and 7.
    let mark = h.mark();
    h.sim.reply_text(CHAT, USER, "/leech -b -doc", id);
    let reply = h.reply(CHAT, mark, "the bulk summary", |t| t.starts_with("Bulk:")).await;
    assert!(reply.starts_with("Bulk: 2 tasks queued, 2 lines skipped, from lines 1 to 7 of the list.\nQueued: #1 (line 1), #2 (line 4)\nSkipped 2:\nline 2: ⚠️ \"not-a-link\" is not a link: expected http(s)://…, ftp://… or magnet:?…\nline 5: ⛔ Refused: "), "{reply}");
    assert!(reply.contains("127.0.0.2"), "{reply}");
    assert!(
        reply.contains("\nNot taken: lines 6 to 7: one command creates at most 4 tasks (commands.bulk_limit); reply to the list with /leech -b 6:7 for them."),
        "{reply}"
    );
    h.until("both files", |_| h.documents(CHAT).len() == 2).await;
    let mut names = h.documents(CHAT);
    names.sort();
    assert_eq!(names, ["a.bin", "renamed.bin"], "line 4's own -n won");

    // The rest, by range: line 6's bad flag is named, line 7 is queued.
    let mark = h.mark();
    h.sim.reply_text(CHAT, USER, "/l -b 6:7", id);
    let reply = h.reply(CHAT, mark, "the second summary", |t| t.starts_with("Bulk:")).await;
    assert!(
        reply.starts_with("Bulk: 1 task queued, 1 line skipped, from lines 6 to 7 of the list.\nQueued: #3 (line 7)\nSkipped 1:\nline 6: ⚠️ -sp: expected a size like 500mb, got \"lots\""),
        "{reply}"
    );
    h.until("the third file", |_| h.documents(CHAT).contains(&"c.bin".to_owned())).await;

    // Mistakes in the command get one clear answer each.
    for (command, reply_to, answer) in [
        ("/leech -b", None, "-b needs a reply: -b takes a message or a .txt file with one link per line"),
        ("/leech -b 9", Some(id), "-b: the list has 7 lines, and the range starts at line 9"),
        ("/leech -b 0:2", Some(id), "-b: lines count from 1, got 0"),
        ("/leech -b 3:2", Some(id), "-b: the range 3:2 ends before it starts"),
        ("/leech -b 3:3", Some(id), "-b: lines 3 to 3 of the list hold no link"),
        ("/leech https://x.test/a -b", Some(id), "-b takes its links from the replied message or .txt file"),
        ("/leech -b -i 2", Some(id), "-b and -i cannot be used together"),
    ] {
        let mark = h.mark();
        match reply_to {
            Some(id) => h.sim.reply_text(CHAT, USER, command, id),
            None => h.sim.send_text(CHAT, USER, command),
        };
        let reply = h.reply(CHAT, mark, command, |t| t.starts_with("⚠️")).await;
        assert!(reply.contains(answer), "{command}: {reply}");
    }
    h.idle().await;
    assert_eq!(h.documents(CHAT).len(), 3, "no command above queued anything");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_reads_a_txt_file_and_refuses_other_files() {
    let h = Harness::start(&[], &[("/a.bin", 2000), ("/b.bin", 3000)]).await;
    let links = format!("\u{feff}{}\r\n{} -n second.bin\r\n", h.url("/a.bin"), h.url("/b.bin"));
    h.sim.send_document(CHAT, USER, "links.txt", links.into_bytes(), None);
    let id = h.user_message(CHAT, "links.txt");
    let mark = h.mark();
    h.sim.reply_text(CHAT, USER, "/leech -b", id);
    let reply = h.reply(CHAT, mark, "the summary", |t| t.starts_with("Bulk:")).await;
    assert!(
        reply.starts_with("Bulk: 2 tasks queued, 0 lines skipped, from lines 1 to 2 of the list."),
        "{reply}"
    );
    h.until("both files", |_| h.documents(CHAT).len() == 2).await;
    let mut names = h.documents(CHAT);
    names.sort();
    assert_eq!(names, ["a.bin", "second.bin"]);

    // The list sent with the command as its caption.
    let mark = h.mark();
    let own = format!("{}\n", h.url("/b.bin"));
    h.sim.send_document(CHAT, USER, "own.txt", own.into_bytes(), Some("/leech -b"));
    let reply = h.reply(CHAT, mark, "the caption's summary", |t| t.starts_with("Bulk:")).await;
    assert!(reply.starts_with("Bulk: 1 task queued, 0 lines skipped, from lines 1 to 1"), "{reply}");

    let big = vec![b'a'; (1 << 20) + 1];
    for (name, bytes, answer) in [
        ("bad.txt", vec![b'h', b'i', 0xff, b'\n'], "\"bad.txt\" is not UTF-8 text (byte 3 is not)"),
        ("big.txt", big, "the list \"big.txt\" is larger than 1024 KiB"),
        ("photo.jpg", vec![0xff, 0xd8], "\"photo.jpg\" is not a .txt file"),
    ] {
        h.sim.send_document(CHAT, USER, name, bytes, None);
        let id = h.user_message(CHAT, name);
        let mark = h.mark();
        h.sim.reply_text(CHAT, USER, "/leech -b", id);
        let reply = h.reply(CHAT, mark, name, |t| t.starts_with("⚠️")).await;
        assert!(reply.contains(answer), "{name}: {reply}");
    }
    h.idle().await;
    assert_eq!(h.documents(CHAT).len(), 3);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_of_a_bulk_counts_against_the_command_quota() {
    let files: Vec<(String, usize)> = (1..=5).map(|i| (format!("/f{i}.bin"), 500)).collect();
    let files: Vec<(&str, usize)> = files.iter().map(|(p, l)| (p.as_str(), *l)).collect();
    let h = Harness::start(&[("MLTB_COMMANDS_AUTHORIZED", "3/1m")], &files).await;
    let list: Vec<String> = (1..=5).map(|i| h.url(&format!("/f{i}.bin"))).collect();
    let list = list.join("\n");
    h.sim.send_text(CHAT, USER, &list);
    let id = h.user_message(CHAT, &list);
    let mark = h.mark();
    h.sim.reply_text(CHAT, USER, "/leech -b", id);
    let reply = h.reply(CHAT, mark, "the summary", |t| t.starts_with("Bulk:")).await;
    // The command paid for line 1; lines 2 and 3 took the rest of the budget of 3.
    assert!(reply.starts_with("Bulk: 3 tasks queued, 0 lines skipped, from lines 1 to 5 of the list.\nQueued: #1 (line 1), #2 (line 2), #3 (line 3)\nStopped at line 4: your command quota is spent (try again in "), "{reply}");
    assert!(reply.contains("reply to the list with /leech -b 4:5 for them."), "{reply}");
    let mark = h.mark();
    h.sim.send_text(CHAT, USER, "/ping");
    let reply = h.reply(CHAT, mark, "the quota's answer", |t| t.starts_with("Too many commands")).await;
    assert!(reply.contains("try again in"), "{reply}");
    h.idle().await;
    assert_eq!(h.documents(CHAT).len(), 3);
    h.shutdown().await;
}
