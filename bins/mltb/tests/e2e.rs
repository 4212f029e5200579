//! The real `mltb` binary against the Telegram simulator (flood limits on), real aria2c
//! and a loopback file server: what a user in a chat sees.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mltb_telegram_sim::{Outbound, Sim, SimConfig};
use mltb_testkit::FileServer;
use sha2::{Digest, Sha256};
use support::{Bot, CHAT, OWNER, data, until};

const USER: i64 = 2000;
const STRANGER: i64 = 3000;

fn texts_to(sent: &[Outbound], chat: i64) -> Vec<String> {
    sent.iter()
        .filter(|o| o.chat_id == chat && o.method == "sendMessage")
        .filter_map(|o| o.text.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_leeches_a_link_and_receives_byte_exact_parts_and_strangers_are_refused_once() {
    let body = data(2_500_000);
    let server = FileServer::builder().file("/files/movie.bin", body.clone()).start().await.unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let mut bot = Bot::start(
        &sim,
        dir.path(),
        &[
            ("MLTB_LEECH_SPLIT_SIZE", "1MB"),
            ("MLTB_API_ENABLED", "true"),
            ("MLTB_API_BIND", &bind),
            ("MLTB_API_TOKEN", "e2e-api-token-0123456789"),
        ],
    );
    let http = reqwest::Client::new();

    // A stranger is refused once, then ignored.
    sim.send_text(STRANGER, STRANGER, "/leech https://example.org/a");
    until(&sim, 30, "the refusal", |s| !texts_to(s, STRANGER).is_empty()).await;
    sim.send_text(STRANGER, STRANGER, "/help");
    sim.send_text(CHAT, USER, "/ping");
    until(&sim, 15, "pong", |s| texts_to(s, CHAT).iter().any(|t| t.starts_with("Pong"))).await;
    assert_eq!(texts_to(&sim.sent(), STRANGER).len(), 1, "refused once, then silence");
    sim.send_text(CHAT, USER, "/stats");
    let sent = until(&sim, 15, "/stats", |s| texts_to(s, CHAT).iter().any(|t| t.contains("Uptime"))).await;
    let stats = texts_to(&sent, CHAT).into_iter().find(|t| t.contains("Uptime")).unwrap();
    assert!(stats.contains("% of") && stats.contains("of one core"), "CPU as percentages: {stats}");

    // Bad input gets one clear answer.
    sim.send_text(CHAT, USER, "/leech not-a-link");
    sim.send_text(CHAT, USER, "/leech https://x.test/a -sp lots");
    sim.send_text(CHAT, USER, "/leech http://127.0.0.2:1/secret");
    let sent = until(&sim, 15, "three answers to bad input", |s| {
        let t = texts_to(s, CHAT);
        t.iter().any(|t| t.contains("is not a link"))
            && t.iter().any(|t| t.contains("-sp: expected a size"))
            && t.iter().any(|t| t.contains("Refused"))
    })
    .await;
    let refused = texts_to(&sent, CHAT).into_iter().find(|t| t.contains("Refused")).unwrap();
    assert!(refused.contains("127.0.0.2"), "{refused}");

    // The leech: three 1 MB parts whose bytes are the source's.
    sim.send_text(CHAT, USER, &format!("/leech {}", server.url("/files/movie.bin")));
    let sent = until(&sim, 60, "three parts", |s| {
        s.iter().filter(|o| o.method == "sendDocument" && o.chat_id == CHAT).count() == 3
    })
    .await;
    let parts: Vec<&Outbound> =
        sent.iter().filter(|o| o.method == "sendDocument" && o.chat_id == CHAT).collect();
    let want: Vec<String> = body.chunks(1_000_000).map(|c| format!("{:x}", Sha256::digest(c))).collect();
    let got: Vec<String> = parts.iter().map(|o| o.file.as_ref().unwrap().sha256.clone()).collect();
    assert_eq!(got, want, "the parts, in order, are the source's bytes");
    // The HTTP API answered throughout: ready, metrics, and the task over /api/v1.
    // Each of its checks has 2 s to answer; on a loaded machine aria2's answer can miss a
    // round (503), so the probe is asked again, for at most 30 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http.get(format!("http://{bind}/ready")).send().await.unwrap();
        let status = ready.status();
        if status == 200 {
            break;
        }
        let body = ready.text().await.unwrap_or_default();
        assert!(tokio::time::Instant::now() < deadline, "/ready answered {status} for 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = http.get(format!("http://{bind}/metrics")).send().await.unwrap().text().await.unwrap();
    for family in ["mltb_tasks", "mltb_telegram_requests", "mltb_http_requests", "mltb_build"] {
        assert!(metrics.contains(family), "{family} missing from /metrics:\n{metrics}");
    }
    let task = http
        .get(format!("http://{bind}/api/v1/tasks/1"))
        .bearer_auth("e2e-api-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(task.status(), 200);
    let names: Vec<&str> = parts.iter().map(|o| o.file.as_ref().unwrap().name.as_str()).collect();
    assert_eq!(names, ["movie.bin.001", "movie.bin.002", "movie.bin.003"]);
    assert!(
        texts_to(&sent, CHAT).iter().any(|t| t.contains("Task #1 queued")),
        "{:?}",
        texts_to(&sent, CHAT)
    );

    // Admin commands: a regular user is told no; the owner gets the log as a file with
    // no secret in it.
    sim.send_text(CHAT, USER, "/log");
    until(&sim, 15, "the refusal of /log", |s| {
        texts_to(s, CHAT).iter().any(|t| t.contains("/log is for the owner"))
    })
    .await;
    sim.send_text(CHAT, OWNER, "/log");
    let sent = until(&sim, 15, "the log", |s| {
        s.iter().any(|o| {
            o.method == "sendDocument" && o.file.as_ref().is_some_and(|f| f.name.starts_with("mltb-log-"))
        })
    })
    .await;
    let log = sent.iter().find(|o| o.file.as_ref().is_some_and(|f| f.name.starts_with("mltb-log-"))).unwrap();
    assert!(log.file.as_ref().unwrap().size > 0);
    let secret = sim.token().split(':').nth(1).unwrap().to_owned();
    for file in walk(sim.files_dir()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(&secret), "the token is in {}", file.display());
    }
    let logged = std::fs::read_to_string(dir.path().join("data/mltb.log")).unwrap();
    assert!(logged.contains("INFO") && !logged.contains(&secret), "the log file exists, without the token");

    assert_eq!(sim.stats().responses_429, 0, "no 429 from the simulator");
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}

/// Sends `/status` in `CHAT` and waits until the status board shows task `id`
/// downloading with some bytes done (the test sets a short `MLTB_STATUS_INTERVAL`:
/// the board is redrawn on a tick, and one drawn as the download starts shows 0 B).
async fn until_downloading(sim: &Sim, id: i64, secs: u64) {
    sim.send_text(CHAT, USER, "/status");
    let shows = |o: &Outbound| {
        o.chat_id == CHAT
            && o.text.as_deref().is_some_and(|t| {
                t.contains(&format!("#{id} "))
                    && t.contains("Downloading with aria2")
                    && !t.contains("\n0 B of")
            })
    };
    until(sim, secs, &format!("the board to show task {id} downloading"), |s| s.iter().any(shows)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_lands_in_the_rclone_remote_and_a_cancel_stops_a_task() {
    let body = data(1_200_000);
    let slow = mltb_testkit::ServedFile::new(data(4_000_000)).drip(32 << 10, Duration::from_millis(100));
    let server = FileServer::builder()
        .file("/files/doc.pdf", body.clone())
        .serve("/files/slow.iso", slow)
        .start()
        .await
        .unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let dest = format!(":local:{}", cloud.display());
    // Boards redrawn every 3 s, so that a slow download is seen under way.
    let mut bot =
        Bot::start(&sim, dir.path(), &[("MLTB_MIRROR_DESTINATION", &dest), ("MLTB_STATUS_INTERVAL", "3s")]);

    sim.send_text(CHAT, USER, &format!("/mirror {}", server.url("/files/doc.pdf")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let landed = loop {
        let found = walk(&cloud).into_iter().find(|p| p.file_name().is_some_and(|n| n == "doc.pdf"));
        if let Some(p) = found
            && std::fs::read(&p).is_ok_and(|b| b == body)
        {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "the mirror never landed in {}", cloud.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(landed.starts_with(&cloud));

    // A regular user may not name an inline remote (it could write anywhere).
    sim.send_text(CHAT, USER, &format!("/mirror {} -up :local:/tmp/elsewhere", server.url("/files/doc.pdf")));
    until(&sim, 15, "the inline-remote refusal", |s| {
        texts_to(s, CHAT).iter().any(|t| t.contains("inline rclone remotes"))
    })
    .await;

    // /cancel of someone else's task is refused; the task's user cancels it.
    sim.send_text(CHAT, USER, &format!("/leech {}", server.url("/files/slow.iso")));
    until(&sim, 15, "task 2 queued", |s| texts_to(s, CHAT).iter().any(|t| t.contains("Task #2 queued")))
        .await;
    until_downloading(&sim, 2, 30).await;
    sim.send_text(CHAT, STRANGER + 1, "/cancel 2");
    until(&sim, 15, "the refusal to cancel", |s| {
        texts_to(s, CHAT).iter().any(|t| t.contains("is not yours"))
    })
    .await;
    sim.send_text(CHAT, USER, "/cancel 2");
    until(&sim, 15, "the cancel", |s| texts_to(s, CHAT).iter().any(|t| t.contains("Cancelling task #2")))
        .await;
    until(&sim, 30, "the chat told who cancelled it", |s| {
        texts_to(s, CHAT).iter().any(|t| *t == format!("Cancelled: slow.iso (#2) by user {USER}"))
    })
    .await;
    let task_dir = dir.path().join("data/downloads/2");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while task_dir.exists() {
        assert!(tokio::time::Instant::now() < deadline, "the cancelled task's files are still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!sim.sent().iter().any(|o| o.method == "sendDocument"), "nothing of the cancelled task was sent");

    // The board's cancel button, behind its confirmation.
    sim.send_text(CHAT, USER, &format!("/leech {}", server.url("/files/slow.iso")));
    until(&sim, 15, "task 3 queued", |s| texts_to(s, CHAT).iter().any(|t| t.contains("Task #3 queued")))
        .await;
    until_downloading(&sim, 3, 30).await;
    let (message, data) = button(&sim, "Cancel #3").await;
    sim.press_button(CHAT, USER, message, &data);
    let sent = until(&sim, 15, "the confirmation", |s| has_button(s, "Confirm cancel #3")).await;
    let (message, data) = find_button(&sent, "Confirm cancel #3").unwrap();
    sim.press_button(CHAT, USER, message, &data);
    let task_dir = dir.path().join("data/downloads/3");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while task_dir.exists() {
        assert!(tokio::time::Instant::now() < deadline, "the task cancelled by its button is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until(&sim, 30, "the button's cancel told", |s| {
        texts_to(s, CHAT).iter().any(|t| *t == format!("Cancelled: slow.iso (#3) by user {USER}"))
    })
    .await;

    // /restart: the owner's, in place; the bot answers again afterwards.
    sim.send_text(CHAT, OWNER, "/restart");
    until(&sim, 15, "the restart", |s| texts_to(s, CHAT).iter().any(|t| t.starts_with("Restarting"))).await;
    let pongs = |s: &[Outbound]| texts_to(s, CHAT).iter().filter(|t| t.starts_with("Pong")).count();
    let before = pongs(&sim.sent());
    sim.send_text(CHAT, USER, "/ping");
    until(&sim, 30, "a pong after the restart", |s| pongs(s) > before).await;
    assert!(bot.child.try_wait().unwrap().is_none(), "the same process runs on");
    assert_eq!(sim.stats().responses_429, 0);
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}

/// The last keyboard button whose text contains `label`: its message and callback data.
fn find_button(sent: &[Outbound], label: &str) -> Option<(i32, String)> {
    sent.iter().rev().filter(|o| o.chat_id == CHAT).find_map(|o| {
        let rows = o.reply_markup.as_ref()?.get("inline_keyboard")?.as_array()?;
        rows.iter().flat_map(|r| r.as_array().into_iter().flatten()).find_map(|b| {
            let text = b.get("text")?.as_str()?;
            let data = b.get("callback_data")?.as_str()?;
            if text.contains(label) { Some((o.message_id?, data.to_owned())) } else { None }
        })
    })
}

fn has_button(sent: &[Outbound], label: &str) -> bool {
    find_button(sent, label).is_some()
}

async fn button(sim: &Sim, label: &str) -> (i32, String) {
    let sent = until(sim, 30, &format!("a {label} button"), |s| has_button(s, label)).await;
    find_button(&sent, label).unwrap()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_download_the_bot_resumes_and_finishes_on_restart() {
    let body = data(3_000_000);
    // About 9 s at full speed: the board, redrawn every 3 s, shows it under way at
    // least twice (a board drawn as it starts says 0 B, and on a busy machine the next
    // redraw at the default 10 s came after the download had ended).
    let slow = mltb_testkit::ServedFile::new(body.clone()).drip(32 << 10, Duration::from_millis(100));
    let server = FileServer::builder().serve("/files/big.bin", slow).start().await.unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = [("MLTB_LEECH_SPLIT_SIZE", "1MB"), ("MLTB_STATUS_INTERVAL", "3s")];
    let mut bot = Bot::start(&sim, dir.path(), &settings);
    sim.send_text(CHAT, USER, &format!("/leech {}", server.url("/files/big.bin")));
    until(&sim, 15, "task 1 queued", |s| texts_to(s, CHAT).iter().any(|t| t.contains("Task #1 queued")))
        .await;
    until_downloading(&sim, 1, 30).await;
    bot.child.start_kill().unwrap(); // SIGKILL
    let _ = bot.child.wait().await;
    let killed_at = sim.sent().len();

    let mut bot = Bot::start(&sim, dir.path(), &settings);
    // The restarted bot takes its board back (edits the stored message, or posts anew).
    until(&sim, 30, "the board after the restart", |s| {
        s[killed_at.min(s.len())..]
            .iter()
            .any(|o| o.chat_id == CHAT && o.text.as_deref().is_some_and(|t| t.starts_with("Tasks: 1")))
    })
    .await;
    let sent = until(&sim, 90, "three parts after the restart", |s| {
        s.iter().filter(|o| o.method == "sendDocument" && o.chat_id == CHAT).count() >= 3
    })
    .await;
    let got: Vec<String> = sent
        .iter()
        .filter(|o| o.method == "sendDocument" && o.chat_id == CHAT)
        .map(|o| o.file.as_ref().unwrap().sha256.clone())
        .collect();
    let want: Vec<String> = body.chunks(1_000_000).map(|c| format!("{:x}", Sha256::digest(c))).collect();
    assert_eq!(got, want, "every part, once, with the source's bytes");
    // Its end is told once, by the bot that finished it.
    let sent = until(&sim, 30, "the completion message", |s| {
        texts_to(s, CHAT).iter().any(|t| t.starts_with("Done: big.bin (#1)"))
    })
    .await;
    assert_eq!(texts_to(&sent, CHAT).iter().filter(|t| t.starts_with("Done:")).count(), 1);
    let resumed =
        server.ranges_for("/files/big.bin").into_iter().flatten().any(|r| !r.starts_with("bytes=0-"));
    assert!(
        resumed,
        "the restarted download continued from its partial data: {:?}",
        server.ranges_for("/files/big.bin")
    );
    assert_eq!(sim.stats().responses_429, 0);
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}

/// Runs 7-Zip in `cwd` with `stdin` as its input (a password).
fn seven_zip(cwd: &Path, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("7z")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("7z is needed for -e/-z: apt-get install p7zip-full (scripts/test installs it)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "7z {args:?}");
}

/// Waits until `path` holds `want`.
async fn until_file(path: &Path, want: &[u8], secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !std::fs::read(path).is_ok_and(|b| b == want) {
        assert!(tokio::time::Instant::now() < deadline, "{} never held the expected bytes", path.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_with_e_extracts_an_encrypted_zip_and_with_z_zips_the_download() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("src/sub")).unwrap();
    let (a, b) = (b"first file".to_vec(), data(400_000));
    std::fs::write(work.path().join("src/a.txt"), &a).unwrap();
    std::fs::write(work.path().join("src/sub/b.bin"), &b).unwrap();
    seven_zip(
        &work.path().join("src"),
        &["a", "-tzip", "-p", "-mem=AES256", "../pack.zip", "a.txt", "sub"],
        "pw 1\npw 1\n",
    );
    let server = FileServer::builder()
        .file("/files/pack.zip", std::fs::read(work.path().join("pack.zip")).unwrap())
        .file("/files/report.pdf", b.clone())
        .start()
        .await
        .unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let dest = format!(":local:{}", cloud.display());
    let mut bot = Bot::start(&sim, dir.path(), &[("MLTB_MIRROR_DESTINATION", &dest)]);

    // A quoted password with a space; the archive's files land in a folder named after it.
    sim.send_text(CHAT, USER, &format!("/mirror -e \"pw 1\" {}", server.url("/files/pack.zip")));
    until_file(&cloud.join("pack/a.txt"), &a, 60).await;
    until_file(&cloud.join("pack/sub/b.bin"), &b, 30).await;
    assert!(!cloud.join("pack.zip").exists(), "the archive itself is not mirrored");

    // -z: one encrypted zip holding the download.
    sim.send_text(CHAT, USER, &format!("/mirror -z s3cret {}", server.url("/files/report.pdf")));
    let zip = cloud.join("report.pdf.zip");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !texts_to(&sim.sent(), CHAT).iter().any(|t| t.contains("report.pdf.zip")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no completion message for the zip: {:?}",
            texts_to(&sim.sent(), CHAT)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = tempfile::tempdir().unwrap();
    seven_zip(out.path(), &["x", &zip.display().to_string()], "s3cret\n");
    assert_eq!(std::fs::read(out.path().join("report.pdf")).unwrap(), b, "the zip holds the download");

    // A wrong password: the task fails, saying why, without echoing the password.
    sim.send_text(CHAT, USER, &format!("/mirror -e nope {}", server.url("/files/pack.zip")));
    let sent = until(&sim, 60, "the failure message", |s| {
        texts_to(s, CHAT).iter().any(|t| t.contains("wrong password"))
    })
    .await;
    let failure = texts_to(&sent, CHAT).into_iter().find(|t| t.contains("wrong password")).unwrap();
    assert!(!failure.contains("nope"), "{failure}");
    assert_eq!(sim.stats().responses_429, 0, "no 429 from the simulator");
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}

/// A TLS client for `localhost` that trusts `cert` and speaks only `versions`.
fn tls_client(
    cert: &rustls::pki_types::CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_its_api_over_tls_13_only_when_given_a_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let mut bot = Bot::start(
        &sim,
        dir.path(),
        &[
            ("MLTB_API_ENABLED", "true"),
            ("MLTB_API_BIND", &bind),
            ("MLTB_API_TOKEN", "e2e-api-token-0123456789"),
            ("MLTB_API_TLS_CERT", cert.to_str().unwrap()),
            ("MLTB_API_TLS_KEY", key.to_str().unwrap()),
        ],
    );
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let der = made.cert.der().clone();
    // TLS 1.3: /health answers once the binary listens.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(&bind).await.ok()?;
            let mut tls =
                tls_client(&der, &[&rustls::version::TLS13]).connect(name.clone(), tcp).await.ok()?;
            assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
            tls.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut answer = String::new();
            tls.read_to_string(&mut answer).await.ok()?;
            Some(answer)
        };
        if let Some(answer) = attempt.await {
            break answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "the API never answered over TLS on {bind}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    // A TLS 1.2-only client is refused in the handshake.
    let tcp = tokio::net::TcpStream::connect(&bind).await.unwrap();
    let refused = tls_client(&der, &[&rustls::version::TLS12]).connect(name, tcp).await;
    let err = refused.expect_err("a TLS 1.2-only client must be refused");
    assert!(err.to_string().contains("ProtocolVersion"), "{err}");
    // Plain HTTP gets no HTTP answer.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    assert!(plain.get(format!("http://{bind}/health")).send().await.is_err());
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_bot_on_the_same_data_directory_is_refused() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut first = Bot::start(&sim, dir.path(), &[]);
    sim.send_text(CHAT, USER, "/ping");
    until(&sim, 30, "the first bot's pong", |s| texts_to(s, CHAT).iter().any(|t| t.starts_with("Pong")))
        .await;
    let second = Bot::command(&sim, dir.path(), &[]).stderr(Stdio::piped()).output().await.unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another mltb is running on the data directory"), "{err}");
    first.child.start_kill().unwrap();
    let _ = first.child.wait().await;
    sim.shutdown().await;
}

/// Reads one metric's value from the bot's `/metrics`, when it is there.
async fn metric(http: &reqwest::Client, bind: &str, name: &str) -> Option<f64> {
    let text = http.get(format!("http://{bind}/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_protection_ships_the_bots_writes_and_a_crash_and_lost_disk_keep_them() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("MLTB_API_ENABLED", "true"),
        ("MLTB_API_BIND", bind.as_str()),
        ("MLTB_BACKUP_CONTINUOUS", "true"),
        ("MLTB_BACKUP_SYNC_EVERY", "200ms"),
    ];
    let mut bot = Bot::start(&sim, dir.path(), &env);
    let http = reqwest::Client::new();
    // The owner makes user 4242 a sudo user: a write to the store.
    sim.send_text(CHAT, OWNER, "/addsudo 4242");
    until(&sim, 30, "the /addsudo reply", |s| {
        texts_to(s, CHAT).iter().any(|t| t.contains("User 4242 is sudo"))
    })
    .await;
    let replied = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // A sync that began after the reply has shipped it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let synced = metric(&http, &bind, "mltb_backup_replica_last_sync_timestamp_seconds").await;
        if synced.is_some_and(|t| t > replied + 0.5) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no sync after the write: {synced:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&http, &bind, "mltb_backup_replica_sync_failures_total").await, Some(0.0));
    // A crash, and the data disk is lost with it.
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    let db = dir.path().join("data/mltb.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let replica = dir.path().join("data/backups/replica");
    let done = mltb_backup::restore_point(&mltb_backup::PointOptions::latest(&replica, &db)).unwrap();
    assert!(done.stopped.is_none() && done.runs > 0, "{done:?}");
    {
        let s = mltb_store::SqliteStore::open_sqlite(&db, mltb_store::StoreConfig::new()).await.unwrap();
        assert_eq!(
            s.role(4242).await.unwrap(),
            Some(mltb_store::Role::Sudo),
            "the write made before the loss is back"
        );
    }
    // The bot starts on the restored store and continues protecting it.
    let mut bot = Bot::start(&sim, dir.path(), &env);
    sim.send_text(CHAT, OWNER, "/users");
    until(&sim, 30, "/users lists the sudo user", |s| {
        texts_to(s, CHAT).iter().filter(|t| t.contains("4242")).count() >= 2
    })
    .await;
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_backup_every_set_the_bot_takes_verified_backups_and_exports_when() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    // Off site too, encrypted to an age key.
    let key = dir.path().join("age-key.txt");
    let made = std::process::Command::new("age-keygen").arg("-o").arg(&key).output();
    assert!(made.is_ok_and(|o| o.status.success()), "age-keygen runs (Debian: apt-get install age)");
    let recipient = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .unwrap();
    let cloud = dir.path().join("cloud");
    let remote = format!(":local:{}", cloud.display());
    let encrypt_to = format!("[\"{recipient}\"]");
    let mut bot = Bot::start(
        &sim,
        dir.path(),
        &[
            ("MLTB_API_ENABLED", "true"),
            ("MLTB_API_BIND", &bind),
            ("MLTB_BACKUP_EVERY", "1h"),
            ("MLTB_BACKUP_REMOTE", &remote),
            ("MLTB_BACKUP_ENCRYPT_TO", &encrypt_to),
        ],
    );
    let http = reqwest::Client::new();
    // The first backup is taken at start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let stamp = loop {
        let text = match http.get(format!("http://{bind}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        // 0 ("never") until the first backup is done.
        if let Some(v) = text
            .lines()
            .find_map(|l| l.strip_prefix("mltb_backup_last_success_timestamp_seconds "))
            .map(|v| v.parse::<f64>().unwrap())
            .filter(|v| *v > 0.0)
        {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "no backup metric on /metrics:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - stamp).abs() < 120.0, "the backup is from now: {stamp} vs {now}");
    let listed = mltb_backup::list(&dir.path().join("data/backups")).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let verified = mltb_backup::verify(&listed[0].path).unwrap();
    assert_eq!(verified.manifest.schema_version, mltb_store::LATEST_VERSION);
    // The off-site copy: encrypted, and it decrypts to the local backup.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = http.get(format!("http://{bind}/metrics")).send().await.unwrap().text().await.unwrap();
        let copied = text
            .lines()
            .find_map(|l| l.strip_prefix("mltb_backup_offsite_last_success_timestamp_seconds "))
            .is_some_and(|v| v.parse::<f64>().is_ok_and(|v| (v - stamp).abs() < 0.01));
        if copied {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no off-site copy reported:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sealed: Vec<_> = std::fs::read_dir(&cloud).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    assert!(sealed[0].to_string_lossy().ends_with(".mltb-backup.age"), "{sealed:?}");
    let opened = dir.path().join("opened.mltb-backup");
    mltb_backup::decrypt(&sealed[0], &key, &opened, Path::new("age")).unwrap();
    assert_eq!(std::fs::read(&opened).unwrap(), std::fs::read(&listed[0].path).unwrap());
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;

    // Restarted, the bot reports the backup on disk before it takes its own.
    let mut bot = Bot::start(
        &sim,
        dir.path(),
        &[("MLTB_API_ENABLED", "true"), ("MLTB_API_BIND", &bind), ("MLTB_BACKUP_EVERY", "1h")],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let reported = loop {
        let text = match http.get(format!("http://{bind}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if let Some(v) = text
            .lines()
            .find_map(|l| l.strip_prefix("mltb_backup_last_success_timestamp_seconds "))
            .map(|v| v.parse::<f64>().unwrap())
        {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no backup metric on /metrics after the restart:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reported >= stamp, "never 0 after a restart: {reported} vs the first backup's {stamp}");
    bot.child.start_kill().unwrap();
    let _ = bot.child.wait().await;
    sim.shutdown().await;
}
