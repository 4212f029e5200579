//! `mltb sandbox`: the whole job on one machine, offline, with no Telegram account — the
//! bot in process, pointed at `mltb-telegram-sim` (also in process), on the embedded
//! defaults, with sample files on a loopback file server and an rclone remote that is a
//! local directory. `mltb sandbox send "/leech …"` talks to a running sandbox as a user
//! and prints the bot's messages until the task ends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use mltb_bot::config::{Config, Env};
use mltb_telegram_sim::{Sim, SimConfig};
use mltb_testkit::{FileServer, ServedFile};
use serde::{Deserialize, Serialize};

/// The sandbox's user, who owns the bot; the chat is their private chat with it.
const USER: i64 = 1000;

/// `mltb sandbox`.
#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Where the sandbox keeps its data, its "cloud" and `sandbox.json`.
    #[arg(long, default_value = "sandbox")]
    dir: PathBuf,
    /// The simulator's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    sim_port: u16,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Send TEXT to the bot of a running sandbox as its user, and print what the bot
    /// sends back until the task it starts ends (or the bot answers, for other commands).
    Send {
        /// The message, e.g. "/leech http://127.0.0.1:…/samples/sample-60MB.bin".
        text: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

/// What a running sandbox writes for `send` and for scripts: `sandbox.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Handle {
    sim_url: String,
    chat: i64,
    user: i64,
    api_url: Option<String>,
    api_token: String,
    samples: Vec<String>,
    cloud: PathBuf,
}

pub(crate) async fn main(args: SandboxArgs, config_file: Option<PathBuf>, env: Env) -> ExitCode {
    match args.action {
        Some(Action::Send { text, timeout }) => send(&args.dir, &text, timeout).await,
        None => run(&args.dir, args.sim_port, config_file, env).await,
    }
}

/// Deterministic sample bytes.
fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn run(dir: &Path, sim_port: u16, config_file: Option<PathBuf>, env: Env) -> ExitCode {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("mltb sandbox: {what}: {e}");
        ExitCode::from(1)
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail("cannot create the sandbox directory", &e);
    }
    let dir = match std::fs::canonicalize(dir) {
        Ok(d) => d,
        Err(e) => return fail("cannot resolve the sandbox directory", &e),
    };
    let cloud = dir.join("cloud");
    if let Err(e) = std::fs::create_dir_all(&cloud) {
        return fail("cannot create the cloud directory", &e);
    }

    let notes = b"mltb sandbox: a small text file.\n".repeat(64);
    let server = match FileServer::builder()
        .file("/samples/notes.txt", notes)
        .file("/samples/sample-8MB.bin", sample(8_000_000, 1))
        .file("/samples/sample-60MB.bin", sample(60_000_000, 2))
        // A slow download (about 2.5 MB/s, 12 s) to try /cancel and the board's buttons on.
        .serve(
            "/samples/slow-30MB.bin",
            ServedFile::new(sample(30_000_000, 3)).drip(256 * 1024, std::time::Duration::from_millis(100)),
        )
        .start()
        .await
    {
        Ok(s) => s,
        Err(e) => return fail("the sample file server", &e),
    };
    let samples: Vec<String> = ["notes.txt", "sample-8MB.bin", "slow-30MB.bin", "sample-60MB.bin"]
        .iter()
        .map(|n| server.url(&format!("/samples/{n}")))
        .collect();

    let sim_config =
        SimConfig { listen: std::net::SocketAddr::from(([127, 0, 0, 1], sim_port)), ..SimConfig::default() };
    let sim = match Sim::start(sim_config).await {
        Ok(s) => s,
        Err(e) => return fail("the Telegram simulator", &e),
    };
    sim.add_chat(USER);

    let api_token =
        mltb_engine::DownloadId::random().to_string() + &mltb_engine::DownloadId::random().to_string();
    let cloud_dest = format!(":local:{}", cloud.display());
    let mut vars: Vec<(String, String)> = vec![
        ("MLTB_BOT_TOKEN".into(), sim.token().to_owned()),
        ("MLTB_OWNER_ID".into(), USER.to_string()),
        ("MLTB_DATA_DIR".into(), dir.join("data").display().to_string()),
        ("MLTB_TELEGRAM_API_URL".into(), sim.api_url().to_owned()),
        ("MLTB_TELEGRAM_POLL_TIMEOUT".into(), "10s".into()),
        ("MLTB_DOWNLOADS_ALLOW".into(), "[\"127.0.0.1\"]".into()),
        ("MLTB_MIRROR_DESTINATION".into(), cloud_dest),
        ("MLTB_QUEUE_MIN_FREE_DISK".into(), "0".into()),
        ("MLTB_STATUS_INTERVAL".into(), "3s".into()),
        ("MLTB_API_BIND".into(), "127.0.0.1:0".into()),
        ("MLTB_API_TOKEN".into(), api_token.clone()),
    ];
    // The user's own MLTB_ variables still apply (e.g. MLTB_LOG_LEVEL), except the ones
    // that would point the sandbox away from its simulator.
    for (k, v) in env_pairs(&env) {
        if !vars.iter().any(|(name, _)| *name == k) {
            vars.push((k, v));
        }
    }
    let config = match config_file {
        Some(path) => Config::load(Some(&path), &Env::from_pairs(vars)),
        None => Config::from_toml("", &Env::from_pairs(vars)),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return fail("the configuration", &e),
    };
    if let Err(e) = mltb_bot::logging::init(&config) {
        return fail("logging", &e);
    }

    let handle_path = dir.join("sandbox.json");
    let sim_url = sim.api_url().to_owned();
    let code = crate::run(config, |_, api| {
        let handle = Handle {
            sim_url: sim_url.clone(),
            chat: USER,
            user: USER,
            api_url: api.map(|a| format!("http://{a}")),
            api_token: api_token.clone(),
            samples: samples.clone(),
            cloud: cloud.clone(),
        };
        if let Err(e) = write_handle(&handle_path, &handle) {
            eprintln!("mltb sandbox: cannot write {}: {e}", handle_path.display());
        }
        print_welcome(&handle, &handle_path);
    })
    .await;
    let _ = std::fs::remove_file(&handle_path);
    sim.shutdown().await;
    server.shutdown().await;
    code
}

fn env_pairs(env: &Env) -> Vec<(String, String)> {
    mltb_bot::config::keys()
        .filter_map(|(_, var)| env.get(&var).map(|v| (var, v)))
        .filter(|(k, _)| !matches!(k.as_str(), "MLTB_TELEGRAM_API_URL" | "MLTB_OWNER_ID" | "MLTB_DATA_DIR"))
        .collect()
}

fn write_handle(path: &Path, handle: &Handle) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("json.tmp");
    let mut file =
        std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(serde_json::to_string_pretty(handle).map_err(std::io::Error::other)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

/// ` --dir DIR` unless the sandbox is in `./sandbox`, where `send` looks by default.
fn dir_arg(handle_path: &Path) -> String {
    let dir = handle_path.parent().unwrap_or(handle_path);
    let default = std::env::current_dir().ok().map(|d| d.join("sandbox"));
    if default.as_deref() == Some(dir) { String::new() } else { format!(" --dir {}", dir.display()) }
}

fn print_welcome(h: &Handle, handle_path: &Path) {
    let sim = &h.sim_url;
    let big = h.samples.last().cloned().unwrap_or_default();
    let small = h.samples.first().cloned().unwrap_or_default();
    println!(
        "
mltb sandbox is running, offline: the bot, a Telegram simulator at {sim},
sample files, and a \"cloud\" (an rclone remote) in {cloud}.
You are user {user}, the bot's owner, in your private chat with it ({chat}).

Chat with the bot in a browser (messages, live edits, buttons, .torrent uploads, and
the files it leeches to download):

  {sim}/_sim/chat_page?chat={chat}&from={user}

Or talk to it from another terminal:

  mltb sandbox{dir_arg} send \"/leech {big}\"
  mltb sandbox{dir_arg} send \"/mirror {small}\"
  mltb sandbox{dir_arg} send \"/status\"

(from the repository, `mltb` is `cargo run --release --bin mltb --`)

Or with curl, through the simulator's control API:

  curl -s {sim}/_sim/text -H 'content-type: application/json' \\
       -d '{{\"chat_id\":{chat},\"from\":{user},\"text\":\"/leech {big}\"}}'
  curl -s '{sim}/_sim/sent'

Samples: {samples}
HTTP API: {api} (bearer token in {handle})
Stop with Ctrl-C; tasks resume at the next start.
",
        cloud = h.cloud.display(),
        user = h.user,
        chat = h.chat,
        samples = h.samples.join(" "),
        api = h.api_url.as_deref().unwrap_or("off"),
        handle = handle_path.display(),
        dir_arg = dir_arg(handle_path),
    );
    let _ = std::io::stdout().flush();
}

/// One entry of the simulator's sent log.
#[derive(Debug, Deserialize)]
struct Sent {
    seq: u64,
    method: String,
    chat_id: i64,
    message_id: Option<i64>,
    text: Option<String>,
    caption: Option<String>,
    file: Option<SentFile>,
}

#[derive(Debug, Deserialize)]
struct SentFile {
    name: String,
    size: u64,
}

async fn send(dir: &Path, text: &str, timeout: u64) -> ExitCode {
    let handle_path = dir.join("sandbox.json");
    let handle: Handle = match std::fs::read_to_string(&handle_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "mltb sandbox send: no running sandbox in {} ({e}); start one with `mltb sandbox` (or scripts/sandbox)",
                dir.display()
            );
            return ExitCode::from(2);
        }
    };
    let http = reqwest::Client::new();
    let sent = |from: usize| {
        let http = http.clone();
        let url = format!("{}/_sim/sent?wait_for={}&timeout_ms=1000", handle.sim_url, from + 1);
        async move {
            let response = http.get(url).send().await.map_err(|e| e.to_string())?;
            if response.status() == reqwest::StatusCode::REQUEST_TIMEOUT {
                return Ok(None);
            }
            response.json::<Vec<Sent>>().await.map(Some).map_err(|e| e.to_string())
        }
    };
    let before = match sent(0).await {
        Ok(Some(log)) => log.len(),
        Ok(None) => 0,
        Err(e) => {
            eprintln!(
                "mltb sandbox send: the simulator at {} does not answer ({e}); is the sandbox running?",
                handle.sim_url
            );
            return ExitCode::from(2);
        }
    };
    let body = serde_json::json!({ "chat_id": handle.chat, "from": handle.user, "text": text });
    if let Err(e) = http
        .post(format!("{}/_sim/text", handle.sim_url))
        .json(&body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
    {
        eprintln!("mltb sandbox send: the simulator refused the message: {e}");
        return ExitCode::from(2);
    }
    println!("you: {text}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut seen = before;
    let mut task: Option<i64> = None;
    let mut answered = false;
    loop {
        if tokio::time::Instant::now() > deadline {
            eprintln!("mltb sandbox send: gave up after {timeout} s");
            return ExitCode::from(1);
        }
        if let Ok(Some(log)) = sent(seen).await {
            for entry in log.iter().filter(|e| e.seq as usize >= seen && e.chat_id == handle.chat) {
                print_entry(entry);
                answered = true;
                if task.is_none()
                    && let Some(t) = entry.text.as_deref()
                    && let Some(id) = queued_task(t)
                {
                    task = Some(id);
                }
            }
            seen = seen.max(log.len());
        }
        match task {
            Some(id) => {
                if let Some(state) = task_state(&http, &handle, id).await
                    && matches!(state.as_str(), "completed" | "failed" | "cancelled")
                {
                    // Whatever the bot sent as the task ended, then the end.
                    if let Ok(Some(log)) = sent(seen).await {
                        log.iter()
                            .filter(|e| e.seq as usize >= seen && e.chat_id == handle.chat)
                            .for_each(print_entry);
                    }
                    println!("task #{id} {state}");
                    return if state == "completed" { ExitCode::SUCCESS } else { ExitCode::from(1) };
                }
            }
            None if answered && !is_task_command(text) => return ExitCode::SUCCESS,
            None => {}
        }
    }
}

/// Whether `text` is `/mirror`, `/leech` or an alias of them (a task to follow).
fn is_task_command(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    let name = first.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(name.as_str(), "/mirror" | "/m" | "/leech" | "/l")
}

/// `#N` in "Task #N queued".
fn queued_task(text: &str) -> Option<i64> {
    let rest = text.split("Task #").nth(1)?;
    let (id, after) = rest.split_once(' ')?;
    after.starts_with("queued").then(|| id.parse().ok()).flatten()
}

fn print_entry(e: &Sent) {
    let what = match (&e.file, &e.text, &e.caption) {
        (Some(f), _, caption) => format!(
            "sent a file: {} ({} bytes){}",
            f.name,
            f.size,
            caption.as_deref().map(|c| format!(" — {}", c.replace('\n', " · "))).unwrap_or_default()
        ),
        (None, Some(t), _) => t.clone(),
        _ => String::new(),
    };
    match e.method.as_str() {
        "editMessageText" => println!("bot (edit #{}): {}", e.message_id.unwrap_or_default(), what),
        "deleteMessage" => println!("bot deleted message #{}", e.message_id.unwrap_or_default()),
        _ => println!("bot: {what}"),
    }
}

async fn task_state(http: &reqwest::Client, handle: &Handle, id: i64) -> Option<String> {
    let api = handle.api_url.as_deref()?;
    let response =
        http.get(format!("{api}/api/v1/tasks/{id}")).bearer_auth(&handle.api_token).send().await.ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body.get("state").and_then(serde_json::Value::as_str).map(str::to_owned)
}
