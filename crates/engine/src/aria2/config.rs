//! How the supervised `aria2c` runs: [`Aria2Config`].

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The longest timeout an aria2 setting takes (a day): deadlines are the clock's time
/// plus the timeout, which a `Duration::MAX` would overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Settings for an [`Aria2Supervisor`](super::Aria2Supervisor) and the calls made to it.
///
/// Built with [`Aria2Config::new`] and the setters; every setting has a default that suits
/// the bot (see each setter).
#[derive(Clone)]
#[non_exhaustive]
pub struct Aria2Config {
    pub(crate) program: PathBuf,
    pub(crate) state_dir: PathBuf,
    pub(crate) rpc_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) seed_time: Option<u32>,
    pub(crate) dht: bool,
    pub(crate) lpd: bool,
    pub(crate) pex: bool,
    pub(crate) all_proxy: Option<String>,
    /// The engine's egress proxy: every protocol's proxy option, and refusals matched to
    /// downloads.
    pub(crate) egress: Option<std::sync::Arc<crate::egress::EgressProxy>>,
    pub(crate) extra_args: Vec<OsString>,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) healthy_after: Duration,
    pub(crate) max_failed_restarts: u32,
}

impl fmt::Debug for Aria2Config {
    // The proxy URL may carry credentials; extra arguments may too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aria2Config")
            .field("program", &self.program)
            .field("state_dir", &self.state_dir)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("seed_time", &self.seed_time)
            .field("dht", &self.dht)
            .field("lpd", &self.lpd)
            .field("pex", &self.pex)
            .field("all_proxy", &self.all_proxy.as_ref().map(|_| "<set>"))
            .field("egress", &self.egress.as_ref().map(|p| p.url()))
            .field("extra_args", &self.extra_args.len())
            .field("backoff", &(self.backoff_min, self.backoff_max))
            .field("max_failed_restarts", &self.max_failed_restarts)
            .finish()
    }
}

impl Aria2Config {
    /// `aria2c` from `PATH`, keeping its session file and log in `state_dir` (created if
    /// missing). Reusing the same `state_dir` after a restart of the engine restores
    /// every unfinished download, with its GID.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            program: PathBuf::from("aria2c"),
            state_dir: state_dir.into(),
            rpc_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            seed_time: None,
            dht: false,
            lpd: false,
            pex: false,
            all_proxy: None,
            egress: None,
            extra_args: Vec::new(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            healthy_after: Duration::from_secs(60),
            max_failed_restarts: 10,
        }
    }

    /// The `aria2c` program to run (default: `aria2c` from `PATH`).
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// How long one RPC call may take before it fails with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) (default 10 s; at most
    /// [`MAX_TIMEOUT`], a longer one is taken as that).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// How long a freshly spawned `aria2c` may take to answer RPC (default 10 s; at most
    /// [`MAX_TIMEOUT`], a longer one is taken as that).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// Seed finished torrents for this many minutes (default: no seeding,
    /// `--seed-time=0`, so a torrent is complete when its data is).
    pub fn seed_minutes(mut self, minutes: u32) -> Self {
        self.seed_time = Some(minutes);
        self
    }

    /// Turns on DHT (IPv4 and IPv6), local peer discovery and peer exchange (all off by
    /// default).
    pub fn peer_discovery(mut self, dht: bool, lpd: bool, pex: bool) -> Self {
        self.dht = dht;
        self.lpd = lpd;
        self.pex = pex;
        self
    }

    /// Sends all of aria2's HTTP(S)/FTP traffic through this proxy (`--all-proxy`), e.g.
    /// the engine's loopback egress proxy. Never logged.
    pub fn all_proxy(mut self, url: impl Into<String>) -> Self {
        self.all_proxy = Some(url.into());
        self
    }

    /// Sends all of aria2's HTTP, HTTPS and FTP traffic through the engine's egress proxy,
    /// with every option [`EgressProxy::aria2_options`](crate::egress::EgressProxy::aria2_options)
    /// names (so `http_proxy` / `no_proxy` in aria2's environment cannot bypass it), and
    /// tags each download so that a download the proxy refused fails with the refusal
    /// ([`ErrorKind::Refused`](crate::ErrorKind::Refused)) instead of aria2's bare
    /// "proxy connection failed".
    pub fn egress(mut self, proxy: std::sync::Arc<crate::egress::EgressProxy>) -> Self {
        self.egress = Some(proxy);
        self
    }

    /// Appends a command-line option, e.g. `--max-concurrent-downloads=3`. Later options
    /// override the supervisor's own.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// The restart backoff: from `min`, doubling to `max` (default 100 ms to 5 s; each at
    /// most [`MAX_TIMEOUT`]). It goes back to `min` once `aria2c` has run for a minute.
    pub fn restart_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min.min(MAX_TIMEOUT);
        self.backoff_max = max.min(MAX_TIMEOUT).max(self.backoff_min);
        self
    }

    /// How many restarts in a row may fail (aria2c exits again before answering RPC)
    /// before the supervisor gives up and reports
    /// [`ErrorKind::Aria2Unavailable`](crate::ErrorKind::Aria2Unavailable) (default 10).
    pub fn max_failed_restarts(mut self, n: u32) -> Self {
        self.max_failed_restarts = n;
        self
    }

    /// The session file aria2 saves every second and reloads on start.
    pub fn session_file(&self) -> PathBuf {
        self.state_dir.join("aria2.session")
    }

    /// aria2's log file (warnings and errors).
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("aria2.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_a_day_are_taken_as_a_day() {
        let c = Aria2Config::new("/tmp/state")
            .rpc_timeout(Duration::MAX)
            .connect_timeout(Duration::MAX)
            .restart_backoff(Duration::MAX, Duration::MAX);
        assert_eq!((c.rpc_timeout, c.connect_timeout), (MAX_TIMEOUT, MAX_TIMEOUT));
        assert_eq!((c.backoff_min, c.backoff_max), (MAX_TIMEOUT, MAX_TIMEOUT));
        // The deadlines built from them fit the clock.
        assert!(std::time::Instant::now().checked_add(c.rpc_timeout.saturating_mul(2)).is_some());
        let c = Aria2Config::new("/tmp/state").rpc_timeout(Duration::from_secs(3));
        assert_eq!(c.rpc_timeout, Duration::from_secs(3));
    }
}
