//! `-i n` (multi): the replied message and the next n − 1 messages the bot has seen in
//! the chat, against the whole bot (simulator, real aria2c, SQLite, a file server).

mod support;

use mltb_telegram_sim::SimChat;
use support::{Harness, USER};

const GROUP: i64 = -1_001_000_000_500;
const OTHER: i64 = 2001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_takes_the_replied_message_and_the_messages_seen_after_it() {
    let chats = format!("[{GROUP}]");
    let h = Harness::start(
        &[
            ("MLTB_COMMANDS_BULK_LIMIT", "3"),
            ("MLTB_AUTH_AUTHORIZED_CHATS", &chats),
            // A group takes 20 messages a minute: leave them to the replies and the files.
            ("MLTB_STATUS_INTERVAL", "60s"),
        ],
        &[("/a.bin", 3000), ("/b.bin", 2000)],
    )
    .await;
    h.sim.add_chat(SimChat::supergroup(GROUP, "Links"));
    let (a, b) = (h.url("/a.bin"), h.url("/b.bin"));
    h.sim.send_text(GROUP, USER, &a);
    h.sim.send_text(GROUP, OTHER, "just chatting");
    // A command is not a message to take.
    h.sim.send_text(GROUP, OTHER, "/ping");
    h.sim.send_document(GROUP, OTHER, "notes.pdf", b"%PDF".to_vec(), None);
    h.sim.send_text(GROUP, OTHER, &format!("{b} and some words"));
    let first = h.user_message(GROUP, &a);
    let chatting = h.user_message(GROUP, "just chatting");
    let notes = h.user_message(GROUP, "notes.pdf");
    let last = h.user_message(GROUP, &format!("{b} and some words"));
    h.reply(GROUP, 0, "the pong", |t| t.starts_with("Pong")).await;

    // Five asked, four known; the limit of three leaves the fourth.
    let mark = h.mark();
    h.sim.reply_text(GROUP, USER, "/leech -i 5", first);
    let reply = h.reply(GROUP, mark, "the summary", |t| t.starts_with("Multi:")).await;
    let want = format!(
        "Multi: 1 task queued, 2 messages skipped, from 4 messages.\nFound 4 of the 5 messages asked for: the bot knows only the messages it has seen since it started (the last 100 of each chat), and in a group it sees them only when its privacy mode is off (@BotFather, /setprivacy) or it is an admin.\nQueued: #1 (message {first})\nSkipped 2:\nmessage {chatting} from user {OTHER}: ⚠️ \"just\" is not a link: expected http(s)://…, ftp://… or magnet:?…\nmessage {notes} from user {OTHER}: ⚠️ \"notes.pdf\" is not a .torrent file: send a link, a magnet, or a .torrent file\nNot taken: message {last}: one command creates at most 3 tasks (commands.bulk_limit); reply to message {last} with /leech -i 1 for them."
    );
    assert!(reply.starts_with(&want), "{reply}\n---\n{want}");

    // As the reply says: the last message, whose first word is its link.
    let mark = h.mark();
    h.sim.reply_text(GROUP, USER, "/leech -i 1 -n second.bin", last);
    let reply = h.reply(GROUP, mark, "the second summary", |t| t.starts_with("Multi:")).await;
    assert!(
        reply.starts_with(&format!(
            "Multi: 1 task queued, 0 messages skipped, from 1 message.\nQueued: #2 (message {last} from user {OTHER})"
        )),
        "{reply}"
    );
    h.until("both files", |_| h.documents(GROUP).len() == 2).await;
    let mut names = h.documents(GROUP);
    names.sort();
    assert_eq!(names, ["a.bin", "second.bin"], "the command's flags apply to each message");

    for (command, reply_to, answer) in [
        ("/leech -i 2", None, "-i needs a reply: to the first of the messages to take"),
        ("/leech https://x.test/a -i 2", Some(first), "-i takes its links from the replied message"),
        ("/leech -i 0", Some(first), "-i: expected a number of links like 3, got \"0\""),
    ] {
        let mark = h.mark();
        match reply_to {
            Some(id) => h.sim.reply_text(GROUP, USER, command, id),
            None => h.sim.send_text(GROUP, USER, command),
        };
        let reply = h.reply(GROUP, mark, command, |t| t.starts_with("⚠️")).await;
        assert!(reply.contains(answer), "{command}: {reply}");
    }
    h.idle().await;
    assert_eq!(h.documents(GROUP).len(), 2);
    h.shutdown().await;
}
