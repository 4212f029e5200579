//! BitTorrent on loopback: `.torrent` files built in the test, a tracker, and an `aria2c`
//! seeder, so torrent and magnet downloads can be tested with nothing leaving 127.0.0.1.
//!
//! - [`TorrentBuilder`] makes single-file and multi-file torrents from bytes or files,
//!   with SHA-1 piece hashes, a tracker URL and web seeds; [`Torrent`] gives the bytes,
//!   the info hash and a magnet link.
//! - [`Tracker`] is an HTTP tracker on `127.0.0.1` that tells each peer about the others.
//! - [`Seeder`] is a second `aria2c` that verifies and seeds a torrent's files, announcing
//!   to a [`Tracker`].
//! - [`bencode`] encodes (canonically) and decodes (strictly) bencoded values.
//!
//! # Example
//!
//! ```
//! use mltb_testkit::TorrentBuilder;
//!
//! let torrent = TorrentBuilder::single("movie.mkv", vec![0u8; 1 << 20]).build().unwrap();
//! assert_eq!(torrent.piece_count(), 4); // 256 KiB pieces
//! let magnet = torrent.magnet(Some("http://127.0.0.1:6969/announce"));
//! assert!(magnet.contains(&torrent.info_hash_hex()));
//! ```

pub mod bencode;
mod builder;
mod escape;
mod seeder;
mod tracker;

pub use builder::{DEFAULT_PIECE_LENGTH, MIN_PIECE_LENGTH, Torrent, TorrentBuilder, TorrentFile};
pub use seeder::Seeder;
pub use tracker::{ANNOUNCE_INTERVAL_SECS, MAX_HEAD_BYTES, Tracker};
