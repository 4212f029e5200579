//! `mltb sandbox`, driven as the README tells a newcomer: start `scripts/sandbox`, then
//! run the `send` lines it prints, and see the files arrive. The script runs this
//! build's binary (`MLTB_SANDBOX_BIN`) instead of building a release one.

use std::process::{Command, Stdio};

mod support;

const MLTB: &str = env!("CARGO_BIN_EXE_mltb");

/// Runs a line the sandbox printed (`mltb sandbox --dir … send "…"`) with this build's binary.
fn run_printed(line: &str) -> (bool, String) {
    let rest = line.trim().strip_prefix("mltb ").expect("a printed mltb command");
    let (head, quoted) = rest.split_once(" \"").expect("a quoted message");
    let mut args: Vec<String> = head.split_whitespace().map(str::to_owned).collect();
    args.push(quoted.trim_end_matches('"').to_owned());
    let out = Command::new(MLTB).args(&args).output().expect("run mltb sandbox send");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_sandbox_runs_a_leech_and_a_mirror_offline() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox_dir = dir.path().join("sb");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sandbox");
    let mut child = Command::new("bash")
        .current_dir(dir.path())
        .arg(&script)
        .args(["--dir", sandbox_dir.to_str().unwrap()])
        .env("MLTB_SANDBOX_BIN", MLTB)
        .env_remove("MLTB_BOT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mltb sandbox starts");
    let welcome = support::welcome(&mut child);
    let send = |what: &str| {
        welcome.iter().find(|l| l.trim_start().starts_with("mltb sandbox") && l.contains(what)).cloned()
    };

    let leech = send("send \"/leech").expect("a /leech line");
    let (ok, out) = run_printed(&leech);
    assert!(ok, "{out}");
    assert!(
        out.contains("sample-60MB.bin.001 (50000000 bytes)")
            && out.contains("sample-60MB.bin.002 (10000000 bytes)"),
        "{out}"
    );
    assert!(out.contains("task #1 completed"), "{out}");

    let mirror = send("send \"/mirror").expect("a /mirror line");
    let (ok, out) = run_printed(&mirror);
    assert!(ok, "{out}");
    assert!(out.contains("task #2 completed"), "{out}");
    let landed =
        std::fs::read(sandbox_dir.join("cloud/notes.txt")).expect("the mirrored file in the sandbox's cloud");
    assert!(landed.starts_with(b"mltb sandbox"));

    let status = send("send \"/status\"").expect("a /status line");
    let (ok, out) = run_printed(&status);
    assert!(ok && out.contains("bot:"), "{out}");

    let _ = child.kill();
    let _ = child.wait();
}
