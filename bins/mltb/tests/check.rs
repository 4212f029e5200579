//! `mltb --check` and `mltb --print-config`, run as a user would: the real binary, a temp
//! directory, the environment.

use std::process::Command;

const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

fn mltb(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mltb"));
    cmd.current_dir(dir).args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run mltb");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_passes_on_the_embedded_defaults_and_never_prints_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = mltb(dir.path(), &["--check"], &[("MLTB_BOT_TOKEN", TOKEN), ("MLTB_OWNER_ID", "42")]);
    assert_eq!(code, 0, "{out}\n(aria2c and rclone come from Debian: sudo apt-get install aria2 rclone)");
    for line in
        ["ok    aria2c: aria2 version", "ok    rclone: rclone v", "ok    database: SQLite", "ready to run"]
    {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(dir.path().join("data/mltb.db").is_file(), "the database is where the defaults say");
    assert!(!out.contains("ABC-DEF1234ghIkl"), "the token leaked:\n{out}");
}

#[test]
fn check_names_what_is_missing_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mltb.toml"), "[downloads]\naria2c = \"/nonexistent/aria2c\"\n").unwrap();
    let (code, out) = mltb(
        dir.path(),
        &["--config", "mltb.toml", "--check"],
        &[("MLTB_BOT_TOKEN", "not-a-token"), ("MLTB_OWNER_ID", "42"), ("MLTB_QEUE_ALL", "3")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "FAIL  aria2c: /nonexistent/aria2c was not found; install it: sudo apt-get install aria2"
        ),
        "{out}"
    );
    assert!(out.contains("FAIL  bot token: MLTB_BOT_TOKEN is not of the form"), "{out}");
    assert!(out.contains("warn  environment: MLTB_QEUE_ALL names no config key"), "{out}");
    assert!(!out.contains("not-a-token"), "the token leaked:\n{out}");
}

#[test]
fn a_bad_config_is_refused_naming_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mltb.toml"),
        "[leech]\nsplit_size = \"1TB\"\n[telegram]\ntoken = \"x\"\n",
    )
    .unwrap();
    let (code, out) = mltb(dir.path(), &["-c", "mltb.toml", "--check"], &[("MLTB_OWNER_ID", "42")]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("leech.split_size: expected 1 byte to 50000000 bytes"), "{out}");
    assert!(out.contains("telegram.token: secrets are read only from the environment"), "{out}");
}

#[test]
fn print_config_shows_the_settings_in_effect_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = mltb(
        dir.path(),
        &["--print-config"],
        &[
            ("MLTB_BOT_TOKEN", TOKEN),
            ("MLTB_OWNER_ID", "42"),
            ("MLTB_QUEUE_ALL", "3"),
            ("MLTB_API_TOKEN", "api-s3cret-0123456789"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("owner_id = 42") && out.contains("all = 3"), "{out}");
    assert!(!out.contains("api-s3cret-0123456789") && !out.contains("ABC-DEF"), "{out}");
}
