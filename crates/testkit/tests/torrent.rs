//! Torrents built by the testkit, checked against aria2 itself.

use mltb_testkit::TorrentBuilder;

/// aria2's own parser (`aria2c --show-files`) reads our torrents and computes the same
/// info hash, layout and piece count.
#[test]
fn aria2_reads_built_torrents_and_agrees_on_the_info_hash() {
    let dir = tempfile::tempdir().unwrap();
    let single = TorrentBuilder::single("one.bin", vec![5u8; 600_000])
        .announce("http://127.0.0.1:1/announce")
        .build()
        .unwrap();
    let multi = TorrentBuilder::multi("pair")
        .file("a.bin", vec![1u8; 70_000])
        .file("sub/b.bin", vec![2u8; 30_000])
        .piece_length(32 * 1024)
        .web_seed("http://127.0.0.1:2/")
        .build()
        .unwrap();
    for (torrent, mode, pieces, paths) in [
        (&single, "single", 3, &["./one.bin"][..]),
        (&multi, "multi", 4, &["./pair/a.bin", "./pair/sub/b.bin"][..]),
    ] {
        let path = dir.path().join(format!("{}.torrent", torrent.name()));
        torrent.save(&path).unwrap();
        let shown = show_files(&path);
        assert!(shown.contains(&format!("Info Hash: {}", torrent.info_hash_hex())), "{shown}");
        assert!(shown.contains(&format!("Mode: {mode}")), "{shown}");
        assert!(shown.contains(&format!("The Number of Pieces: {pieces}")), "{shown}");
        for path in paths {
            assert!(shown.contains(path), "{path} missing from {shown}");
        }
    }
    assert!(
        show_files(&dir.path().join("one.bin.torrent")).contains("Announce:\n http://127.0.0.1:1/announce")
    );
}

fn show_files(path: &std::path::Path) -> String {
    let output =
        std::process::Command::new("aria2c").arg("--show-files=true").arg(path).output().unwrap_or_else(
            |e| panic!("running aria2c failed ({e}); install it with `apt-get install aria2`"),
        );
    assert!(output.status.success(), "aria2c -S failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
