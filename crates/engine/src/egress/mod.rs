//! The egress guard: downloads may not reach private, loopback, link-local, carrier-grade
//! NAT, multicast or cloud-metadata addresses (server-side request forgery), on the first
//! request or on any redirect.
//!
//! Two parts:
//!
//! - [`EgressPolicy`] says which schemes are allowed and which private destinations may
//!   be reached all the same (the allowlist). [`EgressPolicy::check_url`] refuses a URL
//!   before it is handed to the downloader: a scheme that is not allowed, or a host any of
//!   whose addresses is forbidden. Numeric hosts are read as libc reads them, so
//!   `http://2130706433/`, `http://0x7f000001/`, `http://0177.0.0.1/`, `http://127.1/`
//!   and `http://[::ffff:7f00:1]/` are all loopback.
//! - [`EgressProxy`] is a loopback HTTP forward proxy that aria2 sends all its traffic
//!   through (`--all-proxy`, [`EgressProxy::aria2_options`]). It resolves every
//!   destination itself, refuses forbidden ones with `403`, and connects to the address it
//!   checked. Redirects that aria2 follows are new requests through the proxy, so each hop
//!   is checked; a DNS answer that changes after the check is never used.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use mltb_engine::egress::EgressPolicy;
//!
//! let policy = EgressPolicy::builder().allow("127.0.0.1").build().unwrap();
//! let checked = policy.check_url("http://127.0.0.1:8080/a.iso").await.unwrap();
//! assert_eq!(checked.addrs(), ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
//! assert!(policy.check_url("http://0x7f000002:8080/a.iso").await.is_err());
//! # }
//! ```
//!
//! # Design
//!
//! A check before the download is not enough on its own: aria2 follows redirects itself,
//! and a name may resolve to a public address when checked and to a private one when
//! aria2 connects. What each hop actually connects to is what must be judged, so the
//! proxy judges the addresses it is about to connect to, and the pre-check gives a clear
//! error early (and covers what the proxy cannot see, such as a scheme).
//!
//! FTP goes through the proxy too: with `--proxy-method=tunnel` aria2 opens the control
//! and the data connection as two tunnels (and it ignores the address in a `PASV`
//! answer, connecting to the control connection's host).
//!
//! What the proxy does not cover: BitTorrent peer connections and UDP trackers (aria2
//! makes them directly, to addresses from trackers and peers), and anything aria2 is told
//! not to proxy. [`EgressProxy::aria2_options`] names every protocol's proxy and empties
//! `--no-proxy`, which also overrides proxy variables in aria2's environment; per-download
//! proxy options other than [`EgressProxy::aria2_tag_options`] must never be set.

mod addr;
mod http;
mod policy;
mod proxy;

pub use addr::{AddressClass, Forbidden, forbidden, parse_ip_host, parse_ipv4_loose};
pub use policy::{
    CheckedUrl, DEFAULT_RESOLVE_TIMEOUT, DEFAULT_SCHEMES, EgressPolicy, EgressPolicyBuilder, ResolveFuture,
    Resolver,
};
pub use proxy::{EgressProxy, EgressProxyBuilder, EgressStats, Refusal};
