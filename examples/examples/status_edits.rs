//! A busy status board: 20 chats, each reporting download progress ten times a second
//! for ten (simulated) seconds, while Telegram allows one edit per second per chat and
//! 30 messages per second overall. Batching coalesces the progress updates; the
//! limiters keep the edits within Telegram's limits.
//!
//! Run with `cargo run -p mltb-examples --example status_edits`. The clock is tokio's
//! paused clock, so the ten simulated seconds take a few milliseconds.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use mltb_examples::status_edits::{Config, simulate};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), mltb_examples::status_edits::Error> {
    let config = Config { chats: 20, updates_per_chat: 100, update_every: Duration::from_millis(100) };
    let report = simulate(config).await?;
    println!("progress updates submitted: {}", report.submitted);
    println!("edits sent to Telegram:     {}", report.sent);
    println!("updates coalesced away:     {}", report.superseded);
    println!("simulated time:             {:?}", report.elapsed);
    println!("most edits in one chat:     {}", report.max_edits_in_one_chat);
    println!("mean batch size:            {:.1}", report.mean_batch_size);
    Ok(())
}
