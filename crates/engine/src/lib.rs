//! mltb's task engine: a task goes from a link to files on Telegram or on a cloud remote,
//! through aria2 downloads, Telegram uploads split into parts, and rclone copies, and a
//! restart after `kill -9` loses none of it.
//!
//! # Seams
//!
//! - [`Downloader`]: starts, polls, cancels and re-attaches downloads into a task's
//!   directory.
//! - [`Uploader`]: sends a task's files to a destination, recording every confirmed part
//!   through a [`PartLog`] so that an upload resumes from the first unconfirmed part.
//!
//! # Design
//!
//! - **Polling, not callbacks.** Progress comes from asking the downloader; aria2's
//!   notifications are at most a hint (aria2-ws drops them under load).
//! - **Persist, then act.** Every state change of a task is written to the store before
//!   it takes effect, so a restart finds each task where it was.
//!
//! # What comes from the network
//!
//! - [`egress`]: links may not reach private, loopback, link-local, carrier-grade NAT,
//!   multicast or cloud-metadata addresses. [`EgressPolicy::check_url`] refuses such a
//!   link up front; [`EgressProxy`], a loopback proxy that aria2 sends all its traffic
//!   through, holds the same policy on every redirect hop and against DNS answers that
//!   change after the check.
//! - [`names`]: file names from `Content-Disposition` and torrent metadata are sanitised
//!   (no `..`, separators, control characters or reserved names; capped in bytes), and
//!   every path is checked to stay inside the task's directory.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod archive;
pub mod aria2;
mod download;
pub mod egress;
mod error;
pub mod leech;
pub mod mirror;
pub mod names;
mod pipeline;
mod rate;
mod upload;

pub use archive::{Archiving, Pack};
pub use download::{
    DownloadId, DownloadRequest, DownloadSource, DownloadState, DownloadStatus, DownloadedFile, Downloader,
    UrlSource,
};
pub use egress::{CheckedUrl, EgressPolicy, EgressProxy};
pub use error::{Error, ErrorKind, Result};
pub use pipeline::{
    Choice, ChoiceError, ChoiceFile, Chosen, Cluster, Engine, EngineConfig, LeechDefaults, Link, LinkSource,
    MirrorDefaults, QueueLimits, StandardPlanner, TaskOptions, TaskPlanner, TaskView, Waiting,
};
pub use upload::{
    PartLog, SentPart, UploadContext, UploadFile, UploadOutcome, UploadProgress, UploadRequest, Uploader,
};

/// `text` cut to what the store keeps as a task's error (its limit, on a character
/// boundary).
pub(crate) fn limits_error(text: &str) -> String {
    cut(text, mltb_store::limits::ERROR)
}

/// `text` cut to what the store keeps as a task's name.
pub(crate) fn limits_name(text: &str) -> String {
    cut(text, mltb_store::limits::NAME)
}

fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace('\0', "")
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
