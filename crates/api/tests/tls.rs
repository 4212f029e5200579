//! TLS: a certificate made at test time (rcgen, aws-lc-rs); TLS 1.3 is served, a TLS
//! 1.2-only client is refused, plain HTTP gets no answer.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mltb_api::TlsFiles;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{TOKEN, World, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Certs {
    _dir: tempfile::TempDir,
    files: TlsFiles,
    pem: String,
    der: CertificateDer<'static>,
}

/// A self-signed certificate for `localhost`, written to a temp dir (no key is committed).
fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    Certs { files: TlsFiles::new(cert, key), pem: made.cert.pem(), der: made.cert.der().clone(), _dir: dir }
}

fn client_config(
    certs: &Certs,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_is_served_and_tls12_is_refused() {
    let certs = certs();
    let w = World::new().await;
    let s = serve(w.api(World::config().tls(certs.files.clone()))).await;
    let addr = s.running.local_addr();
    let name = ServerName::try_from("localhost").unwrap();

    // A TLS 1.3 client: the handshake says 1.3, and HTTP/1.1 goes through it.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = TlsConnector::from(client_config(&certs, &[&rustls::version::TLS13]))
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(tls.get_ref().1.alpn_protocol(), None, "the client offered no ALPN");
    tls.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains(r#""status":"ok""#), "{answer}");

    // A TLS 1.2-only client is refused during the handshake.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = TlsConnector::from(client_config(&certs, &[&rustls::version::TLS12]))
        .connect(name, tcp)
        .await
        .expect_err("a TLS 1.2-only client must be refused");
    assert!(err.to_string().contains("ProtocolVersion"), "{err}");

    // reqwest (rustls) through the whole stack, token included.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certs.pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", addr.port());
    let r = client.get(format!("{base}/api/v1/tasks")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let r = client.get(format!("{base}/api/v1/tasks")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    assert!(plain.get(format!("http://{addr}/health")).send().await.is_err());

    // The server still serves after the failed handshakes, and stops on request.
    let r = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    s.stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), s.running.wait()).await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_is_refused_at_build() {
    let a = certs();
    let b = certs();
    let w = World::new().await;
    let mixed = TlsFiles::new(&a.files.cert, &b.files.key);
    let err = w.api(World::config().tls(mixed)).build().unwrap_err();
    assert!(err.is_config());
    let text = err.to_string();
    assert!(text.starts_with(&format!("api.tls.key {}:", b.files.key.display())), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}
