//! `mltb-telegram-sim`: runs the simulated Bot API server until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use mltb_telegram_sim::{MB, Mode, RateLimits, Retention, Sim, SimConfig};

/// A faithful Telegram Bot API server on loopback, driven through `/_sim/` by scripts.
#[derive(Debug, Parser)]
#[command(name = "mltb-telegram-sim", version)]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Bot token (`<digits>:<secret>`); generated when absent.
    #[arg(long)]
    token: Option<String>,
    /// Simulate a local Bot API server (2000 MB uploads, file:// inputs) instead of the cloud one.
    #[arg(long)]
    local: bool,
    /// Upload limit in MiB (default 50 in cloud mode, 2000 in local mode).
    #[arg(long)]
    upload_limit_mb: Option<u64>,
    /// getFile limit in MiB in cloud mode (default 20).
    #[arg(long)]
    download_limit_mb: Option<u64>,
    /// Directory for stored files (default: a temporary directory removed on exit).
    #[arg(long)]
    files_dir: Option<PathBuf>,
    /// Disable flood control.
    #[arg(long)]
    no_rate_limits: bool,
    /// Sends/edits one chat may burst before 1/s applies.
    #[arg(long, default_value_t = 3)]
    burst: u32,
    /// The bot's username for getMe.
    #[arg(long, default_value = "mltb_sim_bot")]
    bot_username: String,
    /// Chats kept (least recently used ones are forgotten past it) [default: 1000].
    #[arg(long)]
    max_chats: Option<usize>,
    /// Messages kept per chat [default: 1000].
    #[arg(long)]
    max_messages_per_chat: Option<usize>,
    /// Messages kept across all chats [default: 100000].
    #[arg(long)]
    max_messages: Option<usize>,
    /// Files with a file_id kept [default: 10000].
    #[arg(long)]
    max_files: Option<usize>,
    /// MiB of stored files kept on disk [default: 4096].
    #[arg(long)]
    max_file_mb: Option<u64>,
    /// Updates waiting for getUpdates kept [default: 10000].
    #[arg(long)]
    max_pending_updates: Option<usize>,
    /// Entries of the sent log kept [default: 10000].
    #[arg(long)]
    max_sent_log: Option<usize>,
    /// Callback queries (and callback answers) kept [default: 10000].
    #[arg(long)]
    max_callback_queries: Option<usize>,
}

fn retention(args: &Args) -> Retention {
    let mut r = Retention::default();
    let set = |slot: &mut usize, value: Option<usize>| {
        if let Some(v) = value {
            *slot = v;
        }
    };
    set(&mut r.chats, args.max_chats);
    set(&mut r.messages_per_chat, args.max_messages_per_chat);
    set(&mut r.messages, args.max_messages);
    set(&mut r.files, args.max_files);
    set(&mut r.pending_updates, args.max_pending_updates);
    set(&mut r.sent_log, args.max_sent_log);
    set(&mut r.callback_queries, args.max_callback_queries);
    set(&mut r.callback_answers, args.max_callback_queries);
    if let Some(mb) = args.max_file_mb {
        r.file_bytes = mb.saturating_mul(MB);
    }
    r
}

fn config(args: Args) -> SimConfig {
    let retention = retention(&args);
    let mode = if args.local {
        Mode::Local { upload_limit: args.upload_limit_mb.map_or(Mode::local().upload_limit(), |m| m * MB) }
    } else {
        Mode::Cloud {
            upload_limit: args.upload_limit_mb.map_or(50 * MB, |m| m * MB),
            download_limit: args.download_limit_mb.map_or(20 * MB, |m| m * MB),
        }
    };
    let limits =
        (!args.no_rate_limits).then(|| RateLimits { per_chat_burst: args.burst, ..RateLimits::default() });
    let mut config = SimConfig::default()
        .mode(mode)
        .rate_limits(limits)
        .bot_username(args.bot_username)
        .listen(args.listen)
        .retention(retention);
    config.token = args.token;
    config.files_dir = args.files_dir;
    config
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let sim = match Sim::start(config(args)).await {
        Ok(sim) => sim,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "mltb-telegram-sim: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // One line scripts can read: the API base URL and the token.
    let _ = writeln!(std::io::stdout(), "{} {}", sim.api_url(), sim.token());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    std::process::ExitCode::SUCCESS
}
