use super::*;

const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

fn env(pairs: &[(&str, &str)]) -> Env {
    let mut all = vec![("MLTB_BOT_TOKEN", TOKEN), ("MLTB_OWNER_ID", "42")];
    all.extend_from_slice(pairs);
    Env::from_pairs(all)
}

fn problems(text: &str, env: &Env) -> Vec<String> {
    Config::from_toml(text, env).unwrap_err().0.into_iter().map(|e| e.to_string()).collect()
}

#[test]
fn the_embedded_defaults_need_only_a_token_and_an_owner() {
    let config = Config::from_toml("", &env(&[])).unwrap();
    assert_eq!(config.owner_id, 42);
    assert_eq!(config.secrets.bot_token.as_ref().map(Secret::expose), Some(TOKEN));
    assert_eq!(config.sqlite_path(), PathBuf::from("./data/mltb.db"));
    assert_eq!(config.download_dir(), PathBuf::from("./data/downloads"));
    assert_eq!(config.leech_split_size(), 50_000_000);
    assert!(config.secrets.database_url.is_none() && config.secrets.redis_url.is_none());
    assert!(config.downloads.aria2_endpoints.is_empty(), "aria2c is spawned by the bot");
    assert_eq!(config.api.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));

    let local = Config::from_toml("[telegram]\nlocal_api = true\n", &env(&[])).unwrap();
    assert_eq!(local.leech_split_size(), 2000 * 1024 * 1024);
}

#[test]
fn the_environment_overrides_the_file() {
    let text = "owner_id = 7\n[queue]\nall = 2\n[leech]\nsplit_size = \"10MB\"\n";
    let config = Config::from_toml(
        text,
        &env(&[
            ("MLTB_QUEUE_ALL", "5"),
            ("MLTB_AUTH_SUDO_USERS", "[1, 2]"),
            ("MLTB_API_BIND", "127.0.0.1:9999"),
            ("MLTB_TELEGRAM_COMMAND_SUFFIX", "2"),
            ("MLTB_STATUS_INTERVAL", "15s"),
            ("MLTB_API_READY_INTERVAL", "2s"),
            ("MLTB_SHARED", "../shared"),
        ]),
    )
    .unwrap();
    assert_eq!(config.owner_id, 42, "MLTB_OWNER_ID wins over the file");
    assert_eq!(config.queue.all, Some(5));
    assert_eq!(config.auth.sudo_users, [1, 2]);
    assert_eq!(config.api.bind.port(), 9999);
    assert_eq!(config.telegram.command_suffix, "2", "a text key stays text although it looks like a number");
    assert_eq!(config.status.interval.0, std::time::Duration::from_secs(15));
    assert_eq!(config.api.ready_interval.0, std::time::Duration::from_secs(2));
    assert_eq!(config.leech_split_size(), 10_000_000);
    assert_eq!(config.unknown_vars, ["MLTB_SHARED"]);
}

#[test]
fn bad_values_are_named_with_what_was_expected() {
    let e = problems("[leech]\nsplit_size = \"5 parsecs\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.contains("split_size") && p.contains("expected a size")), "{e:?}");

    let e = problems("[leech]\nsplit_size = \"60MB\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("leech.split_size") && p.contains("50000000")), "{e:?}");

    let e = problems("[queue]\nal = 3\n", &env(&[]));
    assert!(e.iter().any(|p| p.contains("unknown field `al`")), "{e:?}");

    let e = problems("", &env(&[("MLTB_QUEUE_ALL", "many")]));
    assert!(e.iter().any(|p| p.contains("all")), "{e:?}");

    let e = problems("[commands]\nauthorized = \"ten a second\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.contains("expected a quota")), "{e:?}");

    let e = problems("[status]\ninterval = \"1s\"\n[api]\ntls_cert = \"c.pem\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("status.interval")), "{e:?}");
    assert!(e.iter().any(|p| p.starts_with("api.tls_cert")), "{e:?}");

    let e = problems("[api]\nready_interval = \"500ms\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("api.ready_interval: expected at least 1s")), "{e:?}");

    let e = problems("[instance]\nid = \"a b\"\nlease = \"100ms\"\nmost = 0\n", &env(&[]));
    for key in ["instance.id: expected 1 to 64", "instance.lease: expected at least 1s", "instance.most"] {
        assert!(e.iter().any(|p| p.starts_with(key)), "{key}: {e:?}");
    }

    for url in ["bot.example.org", "ftp://bot.example.org", "https://bot.example.org/?a=1"] {
        let e = problems(&format!("[api]\npublic_url = \"{url}\"\n"), &env(&[]));
        assert!(
            e.iter().any(|p| p.starts_with("api.public_url: expected an http:// or https:// address")),
            "{url}: {e:?}"
        );
    }
    let ok = Config::from_toml("[api]\npublic_url = \"https://bot.example.org/mltb\"\n", &env(&[])).unwrap();
    assert_eq!(ok.api.public_url.as_deref(), Some("https://bot.example.org/mltb"));

    let e = problems("[backup]\nencrypt_to = [\"hunter2\"]\nremote = \"/tmp/x\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("backup.remote: expected an rclone remote")), "{e:?}");
    assert!(e.iter().any(|p| p.starts_with("backup.encrypt_to: expected age public keys")), "{e:?}");
    let e = problems("[backup]\nencrypt_to = [\"age1abc\"]\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("backup.encrypt_to: encrypts the off-site copies")), "{e:?}");

    let e = problems("[backup]\nevery = \"10s\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("backup.every: expected at least 1m")), "{e:?}");
    let e = problems("[backup]\nsync_every = \"10ms\"\nsnapshot_every = \"5s\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("backup.sync_every: expected at least 100ms")), "{e:?}");
    assert!(e.iter().any(|p| p.starts_with("backup.snapshot_every: expected at least 1m")), "{e:?}");
    let e = problems(
        "[backup]\ncontinuous = true\n",
        &env(&[("MLTB_DATABASE_URL", "postgres://mltb@127.0.0.1/mltb")]),
    );
    assert!(e.iter().any(|p| p.starts_with("backup.continuous: ships SQLite's log")), "{e:?}");

    let e = problems("[commands]\nbulk_limit = 0\n", &env(&[("MLTB_COMMANDS_BULK_LIMIT", "5000")]));
    assert!(
        e.iter().any(|p| p == "commands.bulk_limit: expected 1 to 1000 tasks per command, got 5000"),
        "{e:?}"
    );

    let e = problems("owner_id = ", &env(&[]));
    assert!(e[0].contains("not valid TOML"), "{e:?}");

    let e = problems("[mirror]\ndestination = \"/abs\"\n", &env(&[]));
    assert!(e.iter().any(|p| p.starts_with("mirror.destination")), "{e:?}");
}

#[test]
fn a_queue_limit_of_zero_is_refused_naming_the_key() {
    // A limit of 0 would keep every task waiting for good.
    let e = problems("[queue]\nall = 0\ndownload = 0\nupload = 0\n", &env(&[("MLTB_QUEUE_PER_USER", "0")]));
    for key in ["queue.all", "queue.download", "queue.upload", "queue.per_user"] {
        assert!(
            e.contains(&format!("{key}: expected at least 1, or leave it unset for no limit")),
            "{key}: {e:?}"
        );
    }
    let config = Config::from_toml("[queue]\nall = 1\nper_user = 1\n", &env(&[])).unwrap();
    assert_eq!((config.queue.all, config.queue.download, config.queue.per_user), (Some(1), None, Some(1)));
}

#[test]
fn an_aria2_endpoint_off_this_host_must_be_declared_unguarded() {
    let endpoint = |url: &str, extra: &str| {
        format!("[downloads]\naria2_endpoints = [{{ name = \"a\", url = \"{url}\"{extra} }}]\n")
    };
    // Off this host: the egress proxy (on a loopback address) is out of its reach.
    for url in ["ws://10.0.0.5:6800/jsonrpc", "wss://aria2.example:443/jsonrpc", "ws://127.example/jsonrpc"] {
        let e = problems(&endpoint(url, ""), &env(&[]));
        assert!(
            e.iter()
                .any(|p| p.starts_with("downloads.aria2_endpoints[0]: url: ")
                    && p.contains("unguarded = true")),
            "{url}: {e:?}"
        );
        let config = Config::from_toml(&endpoint(url, ", unguarded = true"), &env(&[])).unwrap();
        assert!(config.downloads.aria2_endpoints[0].unguarded);
    }
    for url in ["ws://127.0.0.1:6800/jsonrpc", "ws://localhost:6800/jsonrpc", "ws://[::1]:6800/jsonrpc"] {
        let config = Config::from_toml(&endpoint(url, ""), &env(&[])).unwrap();
        assert!(!config.downloads.aria2_endpoints[0].unguarded, "{url}: guarded by default");
    }
}

#[test]
fn a_cache_too_small_for_the_store_is_refused_naming_the_key() {
    for bytes in ["0", "\"1KiB\"", "65535"] {
        let e = problems(&format!("[cache]\nbytes = {bytes}\n"), &env(&[]));
        assert!(
            e.iter().any(|p| p.starts_with("cache.bytes: expected at least 64KiB (65536 bytes), got ")),
            "{bytes}: {e:?}"
        );
    }
    let e = problems("", &env(&[("MLTB_CACHE_BYTES", "0")]));
    assert_eq!(e, ["cache.bytes: expected at least 64KiB (65536 bytes), got 0"]);
    let config = Config::from_toml("[cache]\nbytes = \"64KiB\"\n", &env(&[])).unwrap();
    assert_eq!(config.cache.bytes, Size(MIN_CACHE_BYTES));
}

/// The floor is one the store's cache takes, on any number of cores (up to 64 shards).
#[tokio::test]
async fn the_smallest_cache_accepted_opens_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = mltb_store::StoreConfig::new().cache_bytes(usize::try_from(MIN_CACHE_BYTES).unwrap());
    let store = mltb_store::SqliteStore::open_sqlite(dir.path().join("mltb.db"), config).await.unwrap();
    store.set_role(1, 7, mltb_store::Role::Sudo).await.unwrap();
    assert_eq!(store.role(7).await.unwrap(), Some(mltb_store::Role::Sudo));
    assert_eq!(store.role(7).await.unwrap(), Some(mltb_store::Role::Sudo), "from the cache");
}

#[test]
fn a_split_size_of_zero_is_refused_naming_the_key() {
    for env in [env(&[]), env(&[("MLTB_TELEGRAM_LOCAL_API", "true")])] {
        let e = problems("[leech]\nsplit_size = 0\n", &env);
        assert!(
            e.iter().any(|p| p.starts_with("leech.split_size: expected 1 byte to ") && p.ends_with("got 0")),
            "{e:?}"
        );
    }
}

#[test]
fn the_owner_is_required() {
    let e: Vec<String> = Config::from_toml("", &Env::from_pairs([("MLTB_BOT_TOKEN", TOKEN)]))
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert!(e.iter().any(|p| p.starts_with("owner_id") && p.contains("MLTB_OWNER_ID")), "{e:?}");
}

#[test]
fn secrets_come_only_from_the_environment_and_never_print() {
    let e = problems(
        "[telegram]\ntoken = \"123:abc\"\n[store]\ndatabase_url = \"postgres://u:pw@h/db\"\n",
        &env(&[]),
    );
    assert!(e.iter().any(|p| p.starts_with("telegram.token") && p.contains("MLTB_BOT_TOKEN")), "{e:?}");
    assert!(
        e.iter().any(|p| p.starts_with("store.database_url") && p.contains("MLTB_DATABASE_URL")),
        "{e:?}"
    );
    assert!(e.iter().all(|p| !p.contains("pw@") && !p.contains("123:abc")), "no secret in an error: {e:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-token");
    std::fs::write(&file, "s3cr3t-api-0123456789\n").unwrap();
    let file = file.display().to_string();
    let config = Config::from_toml("", &env(&[("MLTB_API_TOKEN_FILE", &file)])).unwrap();
    assert_eq!(config.secrets.api_token.as_ref().map(Secret::expose), Some("s3cr3t-api-0123456789"));
    let shown = format!("{config:?}{}", config.to_toml());
    assert!(!shown.contains("s3cr3t-api") && !shown.contains(TOKEN), "{shown}");

    let e = problems("", &env(&[("MLTB_API_TOKEN", "short")]));
    assert!(e.iter().any(|p| p.starts_with("MLTB_API_TOKEN: expected 16 to 512 bytes")), "{e:?}");
    let e = problems("", &env(&[("MLTB_API_TOKEN", "a"), ("MLTB_API_TOKEN_FILE", &file)]));
    assert!(e.iter().any(|p| p.contains("both MLTB_API_TOKEN and MLTB_API_TOKEN_FILE")), "{e:?}");
    let e = problems("", &env(&[("MLTB_REDIS_URL_FILE", "/nonexistent/redis-url")]));
    assert!(e.iter().any(|p| p.starts_with("MLTB_REDIS_URL_FILE") && p.contains("cannot read")), "{e:?}");
    // A device that never ends, or a directory, is not read; nor is a file past 1 MiB.
    for path in ["/dev/zero", "/tmp"] {
        let e = problems("", &env(&[("MLTB_API_TOKEN_FILE", path)]));
        assert!(
            e.iter().any(|p| p.starts_with("MLTB_API_TOKEN_FILE") && p.contains("not a regular file")),
            "{e:?}"
        );
    }
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; (1 << 20) + 1]).unwrap();
    let e = problems("", &env(&[("MLTB_API_TOKEN_FILE", &big.display().to_string())]));
    assert!(
        e.iter().any(|p| p.starts_with("MLTB_API_TOKEN_FILE") && p.contains("more than 1048576 bytes")),
        "{e:?}"
    );
}

#[test]
fn every_key_has_a_variable_and_parses() {
    // A file setting every key: each must be known to the override table and to serde.
    let full = r#"
owner_id = 1
data_dir = "/var/lib/mltb"
[telegram]
api_url = "http://127.0.0.1:8081"
local_api = true
command_suffix = "x"
poll_timeout = "20s"
[auth]
authorized_chats = [-100123]
sudo_users = [5]
refusal_silence = "10m"
[commands]
owner = "50/1s"
sudo = "10/1s"
authorized = "5/1s"
guest = "1/1m"
bulk_limit = 20
[store]
sqlite_path = "/tmp/m.db"
[instance]
id = "bot-1"
lease = "10s"
most = 4
[cache]
bytes = "8MiB"
ttl = 60
[downloads]
dir = "/srv/dl"
aria2c = "/usr/bin/aria2c"
seven_zip = "/usr/bin/7z"
aria2_endpoints = [{ name = "a", url = "ws://127.0.0.1:6800/jsonrpc", secret_env = "ARIA2_A" }]
schemes = ["https"]
allow = ["10.0.0.0/8"]
[queue]
all = 4
download = 3
upload = 2
per_user = 1
min_free_disk = "5GB"
keep_failed = true
force_start_admins_only = true
[leech]
split_size = "1000MiB"
dump_chat = -1001
as_media = true
[mirror]
destination = "gdrive:mltb"
rclone = "/usr/bin/rclone"
flags = ["--fast-list"]
[status]
interval = "5s"
page_size = 6
[backup]
every = "6h"
dir = "/srv/backups"
keep_last = 2
keep_daily = 5
keep_weekly = 3
keep_monthly = 12
remote = "offsite:mltb"
encrypt_to = ["age1xx6j8cex5axdncgshys356jzxazqscca8twx84z75me74euw598sm3nc54"]
continuous = true
replica_dir = "/mnt/other-disk/replica"
sync_every = "500ms"
snapshot_every = "12h"
retain = "7d"
[api]
enabled = false
bind = "127.0.0.1:9000"
tls_cert = "/etc/c.pem"
tls_key = "/etc/k.pem"
rate = "5/1s"
ready_interval = "5s"
public_url = "https://bot.example.org/mltb"
[log]
level = "debug"
file = "/var/log/mltb.log"
"#;
    let table: toml::Table = full.parse().unwrap();
    let mut seen = Vec::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(t) => seen.extend(t.keys().map(|i| format!("{k}.{i}"))),
            _ => seen.push(k.clone()),
        }
    }
    let mut known: Vec<String> = keys().map(|(k, _)| k).collect();
    seen.sort();
    known.sort();
    assert_eq!(seen, known, "the override table lists every key");
    let config = Config::from_toml(full, &Env::from_pairs([("MLTB_BOT_TOKEN", TOKEN)])).unwrap();
    assert_eq!(config.leech_split_size(), 1000 << 20);
    assert_eq!(config.commands.bulk_limit, 20);
    assert_eq!(config.downloads.aria2_endpoints[0].secret_env.as_deref(), Some("ARIA2_A"));
    // What the config prints reads back the same.
    let again = Config::from_toml(&config.to_toml(), &Env::from_pairs([("MLTB_BOT_TOKEN", TOKEN)])).unwrap();
    assert_eq!(again.to_toml(), config.to_toml());
}

#[test]
fn the_example_file_is_valid_and_documents_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::from_toml(&text, &env(&[])).unwrap();
    assert_eq!(
        config.to_toml(),
        Config::from_toml("", &env(&[])).unwrap().to_toml(),
        "the example shows the defaults"
    );
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"))
            .unwrap();
    for (key, var) in keys() {
        let bare = key.rsplit('.').next().unwrap_or(&key);
        assert!(text.contains(&format!("{bare} =")), "config.example.toml lacks {key}");
        assert!(
            docs.contains(&format!("`{key}`")) && docs.contains(&var),
            "docs/configuration.md lacks {key} / {var}"
        );
    }
    for (_, var) in SECRET_VARS {
        assert!(docs.contains(var), "docs/configuration.md lacks {var}");
    }
}
