//! A Telegram Bot API client for mltb that never trips Telegram's limits: an outbound
//! scheduler, a long-polling update reader, the bot's command language, and message
//! formatting — on top of [frankenstein](https://docs.rs/frankenstein)'s types.
//!
//! # Example
//!
//! Parse a command, answer with a status message through the scheduler, and edit it as
//! work progresses. Here the transport is an in-process stand-in; in the bot it is a
//! [`Client`] pointed at `api.telegram.org`, a local Bot API server or the simulator.
//!
// The example needs the `client` feature (the scheduler); without it there is no example.
#![cfg_attr(
    feature = "client",
    doc = r#"
```
use mltb_telegram::command::{Args, CommandParser};
use mltb_telegram::format::{escape, human_size, progress_bar};
use mltb_telegram::scheduler::{Request, Response, Scheduler, Transport};

struct Stub;
impl Transport for Stub {
    async fn execute(&self, _: &Request) -> mltb_telegram::Result<Response> {
        Ok(Response::Done)
    }
}

# tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
let parser = CommandParser::builder().bot_username("mltb_bot").build();
let cmd = parser.parse("/l https://example.com/a.iso -sp 1gb -n \"a b.iso\"", None)?.expect("ours");
let Args::Task(task) = &cmd.args else { unreachable!("leech is a task command") };
assert_eq!(task.split_size, Some(1 << 30));

let scheduler = Scheduler::builder().build(Stub);
let status = format!("<b>{}</b>\n{} {}", escape("a b.iso"), progress_bar(0.25, 10), human_size(268_435_456));
scheduler.send(Request::edit_message_text(-1001, 42, status)).await?;
scheduler.shutdown().await;
# Ok::<(), Box<dyn std::error::Error>>(()) })?;
# Ok::<(), Box<dyn std::error::Error>>(())
```
"#
)]
//!
//! # Features
//!
//! - `client` (default): the Bot API [`Client`], the outbound [`scheduler`], the update
//!   [`poller`] and inline keyboards ([`format::KeyboardBuilder`]). The HTTP client is
//!   reqwest (through frankenstein's `client-reqwest`), which also enables reqwest's
//!   `rustls` TLS for api.telegram.org. Without this feature the crate is the
//!   [`command`] parser and text [`format`](mod@format)ting only, with no network dependencies.
//!
//! # Design
//!
//! - **One worker owns the limits.** The [`scheduler`] keeps three GCRA limiters from
//!   `mltb-ratelimit` — global, per chat, per group — and one task decides what to send.
//!   A request goes only when *every* bucket has a cell at the same instant, and then the
//!   cells are taken from all of them at that instant (the limiters read a clock the
//!   worker sets once per decision). Taking the per-chat cell, then waiting for a global
//!   one, would let the chat's next cell start counting before the first request actually
//!   left — two sends to one chat could then go out less than a second apart.
//! - **Any-window limits need burst 1.** A GCRA quota of `30/s` with burst `b` admits
//!   `b + 30·t` in a window `t`, so "at most 30 in any second" needs burst 1. The defaults
//!   also keep 10% headroom (`30/1100ms`, `1/1100ms`, `20/66s`), since Telegram counts
//!   arrivals and network jitter can bring two sends closer than they left.
//! - **Order within a chat, none across chats.** Each chat has a FIFO queue and at most
//!   one request in flight; chats are served round-robin, so a slow or frozen chat never
//!   blocks another. Uploads (`sendDocument`, `sendVideo`) take their cells in order but
//!   then run beside the queue, so a 2 GB part does not hold back the chat's status
//!   edits for minutes; a caller that needs a message after an upload awaits the upload.
//! - **Coalescing.** A status edit replaces a queued edit of the same message (keeping its
//!   place), and both submitters get the result of the one sent. An edit whose text,
//!   parse mode, entities and keyboard equal what the message shows (or will show, once
//!   the edit in flight lands) is not sent. Telegram compares the *parsed* text and
//!   entities, so different markup for the same message (`<b>` and `<strong>`) is sent
//!   and the server's "message is not modified" counts as success.
//! - **429 freezes a scope.** The chat that got it waits `retry_after`; when a second chat
//!   gets one while the first is frozen, the limit hit is evidently the global one and
//!   everything waits ([`scheduler::FreezeScope`]). The request is retried, up to a limit.
//! - **Retries are bounded.** 5xx, network errors and timeouts back off exponentially
//!   (capped) and give up after a set number of retries with the last error. Every
//!   submitted request resolves: to its result, to a typed [`Error`], or to
//!   [`Error::Closed`] if submitted after shutdown. The queue is bounded; `submit` waits
//!   for room and `try_submit` says [`Error::QueueFull`]. Shutdown drains the queue.
//! - **The client never leaks the token.** Transport errors drop the request URL and are
//!   scrubbed of the token; `Debug` redacts it. Uploads have no total timeout (only a
//!   connect timeout); long polls time out at their poll timeout plus a margin.
//! - **The poller decodes update by update.** It asks for raw JSON and decodes each
//!   element, so one update that frankenstein cannot decode is logged and skipped instead
//!   of failing the whole batch, and the offset still moves past it (unless its
//!   `update_id` is outside `0..=u32::MAX`, which no update has).
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
mod client;
pub mod command;
#[cfg(feature = "client")]
mod error;
pub mod format;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod poller;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod scheduler;

#[cfg(feature = "client")]
pub use client::{CLOUD_API_URL, Client, ClientBuilder, UploadProgress};
#[cfg(feature = "client")]
pub use error::{Error, Result};

/// The README's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
