use std::time::{Duration, Instant};

use super::*;
use crate::wire::{self, RawResponse};

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn send(server: &FileServer, method: &str, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    wire::request(server.addr(), method, path, headers, b"").await.unwrap()
}

async fn get(server: &FileServer, path: &str) -> RawResponse {
    send(server, "GET", path, &[]).await
}

async fn get_range(server: &FileServer, path: &str, range: &str) -> RawResponse {
    send(server, "GET", path, &[("Range", range)]).await
}

fn content_length(r: &RawResponse) -> usize {
    r.header("content-length").expect("Content-Length is always set").parse().unwrap()
}

#[tokio::test]
async fn get_and_head_serve_the_whole_file() {
    let body = data(10_000);
    let server = FileServer::builder().file("/dir/data.bin", body.clone()).start().await.unwrap();

    let r = get(&server, "/dir/data.bin").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(content_length(&r), body.len());
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("content-disposition"), None);

    let r = send(&server, "HEAD", "/dir/data.bin", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(content_length(&r), body.len());
    assert!(r.body.is_empty(), "HEAD must not send a body");

    let r = send(&server, "HEAD", "/dir/data.bin", &[("Range", "bytes=0-9")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(content_length(&r), 10);
    assert!(r.body.is_empty());

    // The query string is not part of the route.
    assert_eq!(get(&server, "/dir/data.bin?x=1").await.status, 200);
}

#[tokio::test]
async fn each_range_form_gets_206_with_content_range() {
    let body = data(1000);
    let server = FileServer::builder().file("/f", body.clone()).start().await.unwrap();
    let cases = [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, 999),
        ("bytes=-10", 990, 999),
        ("bytes=995-5000", 995, 999),
        ("bytes=-5000", 0, 999),
    ];
    for (range, start, end) in cases {
        let r = get_range(&server, "/f", range).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range"), Some(format!("bytes {start}-{end}/1000").as_str()), "{range}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(content_length(&r), end - start + 1, "{range}");
        assert_eq!(r.body, body[start..=end], "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_and_ignored_ranges() {
    let body = data(1000);
    let server =
        FileServer::builder().file("/f", body.clone()).file("/empty", Vec::new()).start().await.unwrap();
    for range in ["bytes=1000-", "bytes=2000-3000", "bytes=-0"] {
        let r = get_range(&server, "/f", range).await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
        assert_eq!(content_length(&r), 0);
        assert!(r.body.is_empty());
    }
    let r = get_range(&server, "/empty", "bytes=0-").await;
    assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */0")));

    // Several ranges, or a malformed one: the whole file with 200.
    for range in ["bytes=0-1,5-6", "bytes=9-3", "lines=1-2"] {
        let r = get_range(&server, "/f", range).await;
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(r.header("content-range"), None);
        assert_eq!(r.body, body, "{range}");
    }
}

#[tokio::test]
async fn missing_failing_redirected_and_wrong_method() {
    let server = FileServer::builder()
        .file("/real.bin", &b"real"[..])
        .status("/boom", 500)
        .status("/slow-down", 429)
        .redirect("/old.bin", "/real.bin")
        .start()
        .await
        .unwrap();

    let r = get(&server, "/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(content_length(&r), r.body.len());

    let r = get(&server, "/boom").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("500"), "{}", r.text());
    assert_eq!(get(&server, "/boom").await.status, 500, "a failing route fails every time");
    assert_eq!(get(&server, "/slow-down").await.status, 429);

    let r = get(&server, "/old.bin").await;
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, "/real.bin");
    assert_eq!(get(&server, &location).await.body, b"real");

    let r = send(&server, "POST", "/real.bin", &[]).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn content_disposition_ascii_and_utf8_and_non_ascii_paths() {
    let server = FileServer::builder()
        .serve("/a", ServedFile::new(&b"a"[..]).attachment("report 2024.pdf").content_type("application/pdf"))
        .serve("/ü/b", ServedFile::new(&b"b"[..]).attachment("Übersicht €.txt"))
        .redirect("/to-b", "/ü/b")
        .start()
        .await
        .unwrap();

    let r = get(&server, "/a").await;
    assert_eq!(r.header("content-disposition"), Some(r#"attachment; filename="report 2024.pdf""#));
    assert_eq!(r.header("content-type"), Some("application/pdf"));

    let url = server.url("/ü/b");
    assert_eq!(url, format!("http://{}/%C3%BC/b", server.addr()));
    let r = get(&server, "/%C3%BC/b").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"b");
    assert_eq!(
        r.header("content-disposition"),
        Some(r#"attachment; filename="_bersicht _.txt"; filename*=UTF-8''%C3%9Cbersicht%20%E2%82%AC.txt"#)
    );
    assert_eq!(get(&server, "/to-b").await.header("location"), Some("/%C3%BC/b"));
}

#[tokio::test(start_paused = true)]
async fn slow_drip_delivers_everything_at_the_set_pace() {
    let body = data(1000);
    let delay = Duration::from_millis(500);
    let server = FileServer::builder()
        .serve("/slow", ServedFile::new(body.clone()).drip(100, delay))
        .start()
        .await
        .unwrap();

    let start = tokio::time::Instant::now();
    let r = get(&server, "/slow").await;
    let took = start.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(content_length(&r), 1000);
    // Ten chunks, nine pauses between them, on the paused clock.
    assert!(took >= delay * 9, "took {took:?}");
    assert!(took < delay * 11, "took {took:?}");

    // A range is dripped too: 250 bytes in chunks of 100 is three chunks, two pauses.
    let start = tokio::time::Instant::now();
    let r = get_range(&server, "/slow", "bytes=100-349").await;
    let took = start.elapsed();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, body[100..350]);
    assert!(took >= delay * 2 && took < delay * 4, "took {took:?}");
}

#[tokio::test]
async fn counts_requests_per_path() {
    let server = FileServer::builder().file("/x", &b"x"[..]).start().await.unwrap();
    assert_eq!(server.requests(), 0);
    get(&server, "/x").await;
    send(&server, "HEAD", "/x", &[]).await;
    get(&server, "/missing").await;
    assert_eq!(server.requests(), 3);
    assert_eq!(server.requests_for("/x"), 2);
    assert_eq!(server.requests_for("x"), 2, "paths are normalised to start with /");
    assert_eq!(server.requests_for("/missing"), 1);
    assert_eq!(server.requests_for("/never"), 0);
}

#[tokio::test]
async fn unservable_routes_fail_to_start() {
    let zero =
        FileServer::builder().serve("/z", ServedFile::new(&b"z"[..]).drip(0, Duration::ZERO)).start().await;
    assert!(zero.unwrap_err().to_string().contains("/z"));
    let long = FileServer::builder()
        .serve("/l", ServedFile::new(vec![0u8; 1000]).drip(1, Duration::from_secs(1)))
        .start()
        .await;
    assert!(long.unwrap_err().to_string().contains("more than"));
    assert!(FileServer::builder().status("/s", 1000).start().await.is_err());
    assert!(
        FileServer::builder()
            .serve("/c", ServedFile::new(Vec::new()).content_type("a\nb"))
            .start()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let server = FileServer::builder().file("/x", &b"x"[..]).start().await.unwrap();
    let addr = server.addr();
    assert_eq!(get(&server, "/x").await.status, 200);
    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a shut down server must refuse connections"
    );
}

#[tokio::test]
async fn drop_refuses_new_connections_and_cuts_open_ones() {
    let body = data(600);
    let server = FileServer::builder()
        .serve("/slow", ServedFile::new(body.clone()).drip(100, Duration::from_secs(10)))
        .start()
        .await
        .unwrap();
    let addr = server.addr();
    let client = tokio::spawn(wire::request(addr, "GET", "/slow", &[], b""));
    crate::process::wait_ready("test client", Duration::from_secs(5), || {
        let seen = server.requests_for("/slow");
        async move { if seen == 1 { Ok(()) } else { Err(format!("{seen} requests so far")) } }
    })
    .await
    .unwrap();

    let dropped_at = Instant::now();
    drop(server);
    // The abort takes effect when the runtime next runs the accept task; await that.
    crate::process::wait_ready("file server shutdown", Duration::from_secs(5), || async move {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => Err("still accepting".to_string()),
            Err(_) => Ok(()),
        }
    })
    .await
    .unwrap();
    // The open download ends early instead of dripping for 50 more seconds.
    let cut = client.await.unwrap();
    assert!(dropped_at.elapsed() < Duration::from_secs(10), "took {:?}", dropped_at.elapsed());
    if let Ok(r) = cut {
        assert!(r.body.len() < body.len(), "a dropped server must not finish the body");
    }
}

#[tokio::test]
async fn basic_auth_required_headers_and_recorded_ranges() {
    let server = FileServer::builder()
        .file("/private.bin", data(100))
        .basic_auth("/private.bin", "user", "pa:ss")
        .file("/tagged.bin", data(100))
        .require_header("/tagged.bin", "X-Token", "abc")
        .start()
        .await
        .unwrap();

    let r = get(&server, "/private.bin").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"testkit\""));
    // "user:pa:ss" in base64.
    let r = send(&server, "GET", "/private.bin", &[("Authorization", "Basic dXNlcjpwYTpzcw==")]).await;
    assert_eq!((r.status, r.body.len()), (200, 100));
    let r = send(&server, "GET", "/private.bin", &[("Authorization", "Basic dXNlcjp3cm9uZw==")]).await;
    assert_eq!(r.status, 401);

    assert_eq!(get(&server, "/tagged.bin").await.status, 403);
    assert_eq!(send(&server, "GET", "/tagged.bin", &[("X-Token", "nope")]).await.status, 403);
    let r = send(&server, "GET", "/tagged.bin", &[("x-token", "abc"), ("Range", "bytes=10-")]).await;
    assert_eq!((r.status, r.body.len()), (206, 90));

    assert_eq!(server.ranges_for("/tagged.bin"), vec![None, None, Some("bytes=10-".to_string())]);
    assert!(server.ranges_for("/other").is_empty());
}
