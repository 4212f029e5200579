//! TLS 1.3 only, with rustls on the aws-lc-rs provider: loading the PEM files, and a
//! listener that does handshakes off the accept loop.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::TlsFiles;
use crate::{Error, Result};

/// Handshakes in progress at once; more connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// A server config for `files`: TLS 1.3 only, HTTP/1.1 by ALPN, no client certificates.
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::tls("api.tls.cert", &files.cert, format!("TLS 1.3 is not available: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::tls("api.tls.key", &files.key, format!("cannot be used with the certificate: {e}"))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::tls("api.tls.cert", path, pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::tls("api.tls.cert", path, pem_error(&e)))?;
    if certs.is_empty() {
        return Err(Error::tls("api.tls.cert", path, "holds no PEM CERTIFICATE block"));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| Error::tls("api.tls.key", path, pem_error(&e)))
}

/// A PEM error in words; never the file's content.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => format!("cannot be read: {io}"),
        E::NoItemsFound => {
            "holds no PEM block of the expected kind (a certificate, or a PKCS#8, PKCS#1 or SEC1 private key)"
                .into()
        }
        other => format!("is not valid PEM: {other:?}"),
    }
}

/// Accepts TCP connections, runs each handshake on its own task within a timeout, and
/// yields the connections whose handshake succeeded. A failed handshake (a TLS 1.2-only
/// client, a port scan) is logged at debug and dropped.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` until `stop` is cancelled.
    pub(crate) fn start(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        handshake_timeout: Duration,
        stop: CancellationToken,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    () = stop.cancelled() => return,
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                };
                let (stream, peer) = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: wait a little rather than spin.
                            tracing::warn!(error = %e, "accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx, stop) = (acceptor.clone(), tx.clone(), stop.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let shake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    let tls = tokio::select! {
                        () = stop.cancelled() => return,
                        r = shake => r,
                    };
                    match tls {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop stopped (shutdown): no connection will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_and_their_content_is_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate: hunter2").unwrap();
        std::fs::write(&key, "").unwrap();
        let err = server_config(&TlsFiles::new(&cert, &key)).unwrap_err();
        assert!(err.is_config());
        let text = err.to_string();
        assert!(text.starts_with(&format!("api.tls.cert {}: holds no PEM", cert.display())), "{text}");
        assert!(!text.contains("hunter2"));
        let err = server_config(&TlsFiles::new(dir.path().join("missing.pem"), &key)).unwrap_err();
        assert!(err.to_string().contains("missing.pem: cannot be read"), "{err}");
    }
}
