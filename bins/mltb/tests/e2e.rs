//! The real `mltb` binary against the Telegram simulator (flood limits on), real aria2c
//! and a loopback file server: what a user in a chat sees.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mltb_telegram_sim::{Outbound, Sim, SimConfig};
use mltb_testkit::FileServer;
use sha2::{Digest, Sha256};

const OWNER: i64 = 1000;
const USER: i64 = 2000;
const CHAT: i64 = 2000;
const STRANGER: i64 = 3000;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

struct Bot {
    child: tokio::process::Child,
}

impl Bot {
    fn start(sim: &Sim, dir: &Path, extra: &[(&str, &str)]) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mltb"));
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MLTB_BOT_TOKEN", sim.token())
            .env("MLTB_OWNER_ID", OWNER.to_string())
            .env("MLTB_TELEGRAM_API_URL", sim.api_url())
            .env("MLTB_TELEGRAM_POLL_TIMEOUT", "1s")
            .env("MLTB_AUTH_AUTHORIZED_CHATS", format!("[{CHAT}]"))
            .env("MLTB_DOWNLOADS_ALLOW", "[\"127.0.0.1\"]")
            .env("MLTB_QUEUE_MIN_FREE_DISK", "0")
            .env("MLTB_API_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Self { child: cmd.spawn().expect("the mltb binary starts") }
    }
}

/// Waits (at most `secs`) until the simulator's log satisfies `cond`; returns the log.
async fn until(sim: &Sim, secs: u64, what: &str, cond: impl Fn(&[Outbound]) -> bool) -> Vec<Outbound> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let sent = sim.sent();
        if cond(&sent) {
            return sent;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the bot sent: {sent:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn texts_to(sent: &[Outbound], chat: i64) -> Vec<String> {
    sent.iter()
        .filter(|o| o.chat_id == chat && o.method == "sendMessage")
        .filter_map(|o| o.text.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_leeches_a_link_and_receives_byte_exact_parts_and_strangers_are_refused_once() {
    let body = data(2_500_000);
    let server = FileServer::builder().file("/files/movie.bin", body.clone()).start().await.unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Bot::start(&sim, dir.path(), &[("MLTB_LEECH_SPLIT_SIZE", "1MB")]);

    // A stranger is refused once, then ignored.
    sim.send_text(STRANGER, STRANGER, "/leech https://example.org/a");
    until(&sim, 30, "the refusal", |s| !texts_to(s, STRANGER).is_empty()).await;
    sim.send_text(STRANGER, STRANGER, "/help");
    sim.send_text(CHAT, USER, "/ping");
    until(&sim, 15, "pong", |s| texts_to(s, CHAT).iter().any(|t| t.starts_with("Pong"))).await;
    assert_eq!(texts_to(&sim.sent(), STRANGER).len(), 1, "refused once, then silence");

    // Bad input gets one clear answer.
    sim.send_text(CHAT, USER, "/leech not-a-link");
    sim.send_text(CHAT, USER, "/leech https://x.test/a -sp lots");
    sim.send_text(CHAT, USER, "/leech http://127.0.0.2:1/secret");
    let sent = until(&sim, 15, "three answers to bad input", |s| {
        let t = texts_to(s, CHAT);
        t.iter().any(|t| t.contains("is not a link"))
            && t.iter().any(|t| t.contains("-sp: expected a size"))
            && t.iter().any(|t| t.contains("Refused"))
    })
    .await;
    let refused = texts_to(&sent, CHAT).into_iter().find(|t| t.contains("Refused")).unwrap();
    assert!(refused.contains("127.0.0.2"), "{refused}");

    // The leech: three 1 MB parts whose bytes are the source's.
    sim.send_text(CHAT, USER, &format!("/leech {}", server.url("/files/movie.bin")));
    let sent = until(&sim, 60, "three parts", |s| {
        s.iter().filter(|o| o.method == "sendDocument" && o.chat_id == CHAT).count() == 3
    })
    .await;
    let parts: Vec<&Outbound> =
        sent.iter().filter(|o| o.method == "sendDocument" && o.chat_id == CHAT).collect();
    let want: Vec<String> = body.chunks(1_000_000).map(|c| format!("{:x}", Sha256::digest(c))).collect();
    let got: Vec<String> = parts.iter().map(|o| o.file.as_ref().unwrap().sha256.clone()).collect();
    assert_eq!(got, want, "the parts, in order, are the source's bytes");
    let names: Vec<&str> = parts.iter().map(|o| o.file.as_ref().unwrap().name.as_str()).collect();
    assert_eq!(names, ["movie.bin.001", "movie.bin.002", "movie.bin.003"]);
    assert!(
        texts_to(&sent, CHAT).iter().any(|t| t.contains("Task #1 queued")),
        "{:?}",
        texts_to(&sent, CHAT)
    );

    assert_eq!(sim.stats().responses_429, 0, "no 429 from the simulator");
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}
