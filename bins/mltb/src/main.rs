//! `mltb`: the bot's binary. It parses the command line and the config, composes the
//! bot, its HTTP API and (for the sandbox) the simulator, and runs until a signal; it
//! holds no domain logic and never installs anything.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program reports on its terminal"
)]

mod api;
mod backup;
mod sandbox;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mltb_bot::check::{self, CheckOptions, Status};
use mltb_bot::config::{Config, Env};
use mltb_bot::launch::Running;
use mltb_bot::{Exit, launch};
use tokio_util::sync::CancellationToken;

/// mltb: a Telegram bot that mirrors and leeches links.
///
/// Set MLTB_BOT_TOKEN and MLTB_OWNER_ID (or write them in a config file, see
/// config.example.toml and docs/configuration.md) and run it. `mltb sandbox` runs the
/// whole job offline, with no Telegram account.
#[derive(Debug, Parser)]
#[command(name = "mltb", version)]
struct Cli {
    /// The config file (TOML). Default: the file MLTB_CONFIG names, else none (the
    /// embedded defaults and the environment only).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Check the config and the environment (aria2c, rclone, directories, token, database)
    /// and say what to fix; exits non-zero when something would stop the bot.
    #[arg(long)]
    check: bool,
    /// Print the configuration in effect (secrets left out) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole job offline: the bot, a Telegram simulator, sample files on a local
    /// file server and an rclone remote that is a local directory.
    Sandbox(sandbox::SandboxArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    if let Some(Command::Sandbox(args)) = cli.command {
        return sandbox::main(args, cli.config, env).await;
    }
    let path = cli.config.clone().or_else(|| env.get("MLTB_CONFIG").map(PathBuf::from));
    let config = match Config::load(path.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mltb: {e}");
            eprintln!("(every key is described in docs/configuration.md)");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    if cli.check {
        let findings = check::run(&config, CheckOptions::default()).await;
        for f in &findings {
            println!("{f}");
        }
        let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
        if failed > 0 {
            println!("mltb --check: {failed} problem(s) would stop the bot");
            return ExitCode::from(1);
        }
        println!("mltb --check: ready to run");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = mltb_bot::logging::init(&config) {
        eprintln!("mltb: {e}");
        return ExitCode::from(2);
    }
    run(config, |_, _| {}).await
}

/// Runs the bot and its API until SIGINT or SIGTERM; `/restart` starts them again in
/// place. `started` is called each time they are up (with the API's address).
async fn run(config: Config, mut started: impl FnMut(&Running, Option<SocketAddr>)) -> ExitCode {
    let stop = CancellationToken::new();
    let signals = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("mltb: stopping (tasks resume at the next start)");
        signals.cancel();
    });
    loop {
        // Fresh metrics for each start: a `/restart` resets the counters as a process
        // restart would (Prometheus reads that as a counter reset).
        let metrics = api::new_metrics();
        let observer = std::sync::Arc::new(api::MetricsObserver(metrics.clone()));
        let running = match launch::start_observed(config.clone(), observer).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mltb: {e}");
                eprintln!("(`mltb --check` checks the config and the environment)");
                return ExitCode::from(1);
            }
        };
        api::register(&metrics, &running);
        let api_stop = CancellationToken::new();
        let server =
            match api::serve(&config, &running, metrics.clone(), api_stop.clone().cancelled_owned()).await {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("mltb: {e}");
                    running.shutdown().await;
                    return ExitCode::from(1);
                }
            };
        if let Err(e) = backup::spawn(&config, &metrics, api_stop.clone()) {
            eprintln!("mltb: {e}");
            api_stop.cancel();
            running.shutdown().await;
            return ExitCode::from(1);
        }
        let replica = match backup::protect(&config, &metrics) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mltb: {e}");
                api_stop.cancel();
                running.shutdown().await;
                return ExitCode::from(1);
            }
        };
        let addr = server.as_ref().map(mltb_api::Running::local_addr);
        if let Some(addr) = addr {
            tracing::info!(%addr, "the HTTP API is listening");
            let scheme = if config.api.tls_cert.is_some() { "https" } else { "http" };
            running.bot.serve_pages_at(&format!("{scheme}://{addr}"));
        }
        tracing::info!("mltb is running");
        started(&running, addr);
        let exit = running.bot.run(stop.clone()).await;
        api_stop.cancel();
        if let Some(s) = server
            && let Err(e) = s.wait().await
        {
            tracing::warn!(error = %e, "the HTTP API stopped with an error");
        }
        running.shutdown().await;
        if let Some(r) = replica {
            // Its last sync ships the last writes; the next start (a /restart) takes
            // the replica's lock again.
            let _ = tokio::task::spawn_blocking(move || r.stop()).await;
        }
        match exit {
            Exit::Restart => tracing::info!("restarting"),
            Exit::Stopped => return ExitCode::SUCCESS,
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
