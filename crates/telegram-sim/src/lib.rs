//! A faithful Telegram Bot API server on loopback, for tests and offline runs of a bot.
//!
//! [`Sim`] serves the Bot API methods a mirror/leech bot uses, with Telegram's exact error
//! strings, status codes, limits, text parsing and flood control, so that a real client
//! (frankenstein, teloxide, python-telegram-bot, curl) can be pointed at it. Tests register
//! the chats the bot can see ([`Sim::add_chat`]), inject what users do
//! ([`Sim::send_text`], [`Sim::press_button`], [`Sim::send_document`],
//! [`Sim::inject_raw_update`]), observe what the bot did ([`Sim::sent`], [`Sim::message`],
//! [`Sim::callback_answers`], [`Sim::stats`]) and inject failures ([`Sim::inject_fault`]).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mltb_telegram_sim::{Fault, Sim, SimConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Sim::start(SimConfig::default()).await?;
//! let update_id = sim.send_text(42, 42, "/start");
//!
//! // The bot side: any HTTP client will do.
//! let http = reqwest::Client::new();
//! let base = format!("{}/bot{}", sim.api_url(), sim.token());
//! let updates: serde_json::Value =
//!     http.get(format!("{base}/getUpdates?timeout=5")).send().await?.json().await?;
//! assert_eq!(updates["result"][0]["update_id"], update_id);
//! assert_eq!(updates["result"][0]["message"]["text"], "/start");
//!
//! // Chat 42 is known: its user wrote to the bot. Text is parsed as Telegram parses it.
//! let sent = http
//!     .post(format!("{base}/sendMessage"))
//!     .json(&serde_json::json!({ "chat_id": 42, "text": "<b>hello</b>", "parse_mode": "HTML" }))
//!     .send()
//!     .await?;
//! assert_eq!(sent.status(), 200);
//! let log = sim.wait_for_sent(1, Duration::from_secs(5)).await?;
//! assert_eq!(log[0].text.as_deref(), Some("hello"));
//! assert_eq!(log[0].entities, Some(serde_json::json!([{"offset": 0, "length": 5, "type": "bold"}])));
//!
//! // A chat the bot cannot see does not exist.
//! let unknown = http
//!     .post(format!("{base}/sendMessage"))
//!     .json(&serde_json::json!({ "chat_id": 7, "text": "hi" }))
//!     .send()
//!     .await?;
//! assert_eq!(unknown.status(), 400);
//!
//! // The next call fails with 429 and a Retry-After header.
//! sim.inject_fault(Fault::TooManyRequests { retry_after: 3 }, 1);
//! let limited = http.get(format!("{base}/getMe")).send().await?;
//! assert_eq!(limited.status(), 429);
//! assert_eq!(limited.headers()["retry-after"], "3");
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! No optional features. The binary `mltb-telegram-sim` runs the same server for scripts,
//! driven through the control API under `/_sim/` (routes in the README).
//!
//! - Routing: `GET|POST /bot<token>/<method>` (method names case-insensitive), 401
//!   `Unauthorized` for another token, 404 `Not Found: method not found`; any other HTTP
//!   method is a bare 501.
//! - Parameters from the query string and JSON, urlencoded or multipart bodies (chunked
//!   or not), read as the official server reads them (see *Design*).
//! - Methods: `getMe` (with the bot-only fields), `getUpdates` (offset confirmation,
//!   negative offset, `limit`, persistent `allowed_updates`, long poll up to 50 s, 409 for
//!   the older of two polls), `sendMessage`, `editMessageText`, `editMessageReplyMarkup`,
//!   `editMessageCaption`, `deleteMessage`, `answerCallbackQuery`, `sendDocument`,
//!   `sendVideo`, `sendPhoto`, `sendMediaGroup`, `getFile` and file downloads, `getChat`
//!   (a `ChatFullInfo`), `sendChatAction` (the documented actions), `setMyCommands`,
//!   `getMyCommands`, `setWebhook`, `deleteWebhook`, `getWebhookInfo`.
//! - Formatted text: `parse_mode` HTML, MarkdownV2 and the legacy Markdown, or explicit
//!   `entities`/`caption_entities`; answers carry the text without markup and entities
//!   with UTF-16 offsets; bad markup gets Telegram's `can't parse entities: …` errors.
//! - Chats: only chats the bot can see exist ([`Sim::add_chat`], or a chat a simulated
//!   user writes in); others answer `chat not found`; [`Sim::set_blocked`] makes a user
//!   block the bot (403).
//! - Limits of [`Mode::Cloud`] (413 over the upload limit, `file is too big` over the
//!   download limit) and [`Mode::Local`] (`file:///abs/path` inputs, absolute `file_path`).
//! - Flood control ([`RateLimits`]) on sends and edits: 429 with `parameters.retry_after`
//!   and a `Retry-After` header.
//! - Bounded state ([`Retention`]): a run of hours holds at most so many chats, messages,
//!   files (and bytes on disk), pending updates, log entries and callback queries.
//!
//! # Design
//!
//! - One `Mutex` over the whole state, never held across an `.await`; the sim is a test
//!   double, so simplicity beats throughput.
//! - Fidelity comes from the official server's source (tdlib/telegram-bot-api's
//!   `Client.cpp`, td's `HttpReader` and `MessageEntity.cpp`), cited where followed:
//!   - every parameter is a string (a JSON `null` is the text `null`); integers are read
//!     like td's `to_integer` (`"12abc"` is 12, `"abc"` is 0) and never fail; booleans
//!     are `true`, `yes` or `1`; the first of a repeated parameter wins, the query string
//!     first; a malformed JSON body keeps the parameters before the fault;
//!   - checks run in `Client.cpp`'s order: the method's own parameters (text and
//!     `parse_mode`, reply parameters, markup), then the chat, then the replied or edited
//!     message, then what tdlib and Telegram's servers check (cleaning and trimming,
//!     lengths, `BUTTON_DATA_INVALID`, blocked users, flood control, "not modified");
//!   - more than 1 MiB of parameters and methods other than GET and POST are refused by
//!     the HTTP layer: a status line (413, 501), no body, connection closed.
//! - Text is parsed by ports of tdlib's `parse_html`, `parse_markdown_v2` and
//!   `parse_markdown`, then cleaned and trimmed as `fix_formatted_text` does (control
//!   characters become spaces, `\r` goes, trailing spaces and line breaks go). The 4096
//!   (text) and 1024 (caption) limits count code points of that result, as tdlib's
//!   `utf8_length` does; "message is not modified" compares the parsed text and entities.
//!   A `&` that starts no known character reference is text, as in tdlib; a bare `<`
//!   starts a tag and fails.
//! - Time is tokio's clock, so tests on a paused clock control rate limits, long polls and
//!   [`Fault::Slow`]; [`Outbound::at`] is that clock converted to `std::time::Instant`.
//! - The server is hyper's http1 connection driven by hand over an axum router, so that
//!   [`Fault::DropConnection`] can close the socket without answering.
//! - Uploads stream to temporary files while they are hashed and counted: memory stays
//!   flat whatever the file size. A file part over the limit stops being stored at once;
//!   the rest of the body (up to 256 MiB) is read and discarded before the 413 is sent,
//!   because a client still writing would otherwise see a connection reset instead of
//!   the answer. A `Content-Length` over the limit plus 1 MiB of framing is refused
//!   without storing anything.
//! - Memory is bounded by [`Retention`]: past a limit the oldest entry goes (for chats
//!   the least recently used), and forgotten state answers as unknown state does on
//!   Telegram. Flood state keeps only what the last minute needs and forgets idle chats.
//! - Rate limits: a token bucket per chat (`per_chat_per_sec`, `per_chat_burst` deep),
//!   sliding windows of 60 s per group (negative chat id) and 1 s globally. Only
//!   accepted calls count; an album (`sendMediaGroup`) counts once; edits count like
//!   sends; `answerCallbackQuery`, `deleteMessage` and `sendChatAction` are not limited.
//!   [`SimStats`] reports the densest windows actually accepted, so a test can assert that
//!   a client's own scheduler never relied on the burst allowance. While limits are off
//!   ([`Sim::set_rate_limits`]) accepted calls still count in the figures but not in the
//!   limiter's state.
//! - Tests on tokio's paused clock: the clock jumps to the next timer whenever the runtime
//!   waits on I/O, so use a client without timers (e.g. `reqwest` with
//!   `pool_idle_timeout(None)`) and expect the sim's own timers (long-poll deadlines,
//!   [`Fault::Slow`]) to fire as soon as nothing else is runnable.
//!
//! Not simulated: webhook delivery (`setWebhook` only switches `getUpdates` to 409),
//! inline mode, payments, chat members and permissions, URL inputs (answered with
//! `failed to get HTTP URL content`), media other than documents, videos and photos; the
//! entities Telegram finds by itself (URLs, mentions, hashtags, commands in the bot's own
//! messages), tdlib's splitting of overlapping client-given entities, and the
//! normalisation of `text_link` URLs beyond scheme, host case and a `/` path.

mod api;
mod config;
mod control;
mod entities;
mod error;
mod inject;
mod ratelimit;
mod server;
mod sim;
mod state;
mod types;

pub use config::{MB, Mode, RateLimits, Retention, SimConfig};
pub use error::{Error, ErrorKind, Result};
pub use sim::Sim;
pub use types::{
    CallbackAnswer, ChatKind, Fault, FileRecord, MessageState, Outbound, Retained, SimChat, SimStats,
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
