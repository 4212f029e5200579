//! The real `mltb` binary, started for a test against the Telegram simulator.

#![allow(dead_code, unreachable_pub, reason = "each test file uses part of the support")]

use std::path::Path;
use std::process::Stdio;

use mltb_telegram_sim::{Outbound, Sim};

/// The owner in the config.
pub const OWNER: i64 = 1000;
/// A chat authorized in the config: a user's private chat with the bot.
pub const CHAT: i64 = 2000;

/// Waits (at most `secs`) until the simulator's log satisfies `cond`; returns the log.
pub async fn until(sim: &Sim, secs: u64, what: &str, cond: impl Fn(&[Outbound]) -> bool) -> Vec<Outbound> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let sent = sim.sent();
        if cond(&sent) {
            return sent;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the bot sent: {sent:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `len` bytes of a fixed pattern that does not repeat within a part.
pub fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

pub struct Bot {
    pub child: tokio::process::Child,
}

impl Bot {
    pub fn start(sim: &Sim, dir: &Path, extra: &[(&str, &str)]) -> Self {
        Self { child: Self::command(sim, dir, extra).spawn().expect("the mltb binary starts") }
    }

    /// The binary, configured for `sim` and `dir`, not started.
    pub fn command(sim: &Sim, dir: &Path, extra: &[(&str, &str)]) -> tokio::process::Command {
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
        cmd
    }
}

/// One of several instances of the bot on `database` (PostgreSQL) and `redis`, not
/// started: instance id `id`, data directory `dir/<id>` (returned), logging to its file
/// only (`<data_dir>/mltb.log`), with `extra` settings on top.
pub fn instance_command(
    sim: &Sim,
    dir: &Path,
    id: &str,
    database: &str,
    redis: &str,
    extra: &[(&str, &str)],
) -> (tokio::process::Command, std::path::PathBuf) {
    let data_dir = dir.join(id);
    let data = data_dir.display().to_string();
    let mut cmd = Bot::command(
        sim,
        dir,
        &[
            ("MLTB_DATA_DIR", data.as_str()),
            ("MLTB_DATABASE_URL", database),
            ("MLTB_REDIS_URL", redis),
            ("MLTB_INSTANCE_ID", id),
        ],
    );
    for (k, v) in extra {
        cmd.env(k, v);
    }
    // Several on the terminal are noise.
    cmd.stderr(Stdio::null());
    (cmd, data_dir)
}

/// The lines `mltb sandbox` (started as `child`, stdout piped) prints up to the end of
/// its welcome ("Stop with Ctrl-C…"), waiting at most 60 s; kills it and panics
/// otherwise.
pub fn welcome(child: &mut std::process::Child) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("the sandbox's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("Stop with Ctrl-C")) {
        match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("the sandbox did not print its welcome within 60 s; got {lines:#?}");
            }
        }
    }
    lines
}
