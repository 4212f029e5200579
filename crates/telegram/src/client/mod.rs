//! [`Client`]: frankenstein's [`AsyncTelegramApi`] over reqwest, with a configurable
//! base URL, no total timeout on uploads, per-file upload progress, and errors that never
//! contain the bot token.

mod upload;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use frankenstein::AsyncTelegramApi;
use frankenstein::response::{ErrorResponse, MessageOrBool};

pub use self::upload::UploadProgress;
use crate::scheduler::{Request, Response, Transport};
use crate::{Error, Result};

/// The cloud Bot API.
pub const CLOUD_API_URL: &str = "https://api.telegram.org";

type ProgressFn = Arc<dyn Fn(&UploadProgress) + Send + Sync>;

/// A Bot API client: `{api_url}/bot{token}/{method}`. Cheap to clone.
///
/// ```no_run
/// use frankenstein::AsyncTelegramApi;
/// use mltb_telegram::Client;
///
/// # async fn run() -> mltb_telegram::Result<()> {
/// let client = Client::builder("123456:secret").api_url("http://127.0.0.1:8081").build()?;
/// let me = client.get_me().await?;
/// assert!(me.result.is_bot);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    base: Arc<str>,
    token: Arc<str>,
    http: reqwest::Client,
    request_timeout: Duration,
    poll_margin: Duration,
    progress: Option<ProgressFn>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.base)
            .field("token", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    token: String,
    api_url: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    poll_margin: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The server: [`CLOUD_API_URL`] (default), a local `telegram-bot-api` server, or the
    /// simulator. Without the `/bot<token>` part.
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = url.into();
        self
    }

    /// Connection timeout. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout of each JSON call (not uploads, which have none, and not getUpdates, whose
    /// timeout is its long-poll `timeout` plus [`poll_margin`](Self::poll_margin)).
    /// Default 60 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Added to a long poll's `timeout` to get its request timeout. Default 10 s.
    pub fn poll_margin(mut self, margin: Duration) -> Self {
        self.poll_margin = margin;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client> {
        if self.token.is_empty() || self.token.contains(['/', '?', '#', ' ']) {
            return Err(Error::Invalid {
                what: "bot token",
                reason: "expected <bot id>:<secret> without '/', '?', '#' or spaces".into(),
            });
        }
        // No total timeout: an upload of 2 GB to a local server can take long. JSON calls
        // and long polls set their own per request.
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| Error::Invalid { what: "HTTP client", reason: e.to_string() })?;
        Ok(Client {
            base: self.api_url.trim_end_matches('/').into(),
            token: self.token.into(),
            http,
            request_timeout: self.request_timeout,
            poll_margin: self.poll_margin,
            progress: None,
        })
    }
}

impl Client {
    /// A builder for the bot with `token`.
    pub fn builder(token: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            token: token.into(),
            api_url: CLOUD_API_URL.to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            poll_margin: Duration::from_secs(10),
        }
    }

    /// A clone that reports upload progress to `progress`, once per chunk read from each
    /// file part (bytes sent so far and the file's size).
    pub fn with_progress(&self, progress: impl Fn(&UploadProgress) + Send + Sync + 'static) -> Self {
        Self { progress: Some(Arc::new(progress)), ..self.clone() }
    }

    /// The server's base URL.
    pub fn api_url(&self) -> &str {
        &self.base
    }

    fn endpoint(&self, method: &str) -> String {
        format!("{}/bot{}/{method}", self.base, self.token)
    }

    /// Removes the token from text that may contain a URL.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(&*self.token, "<token>")
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        let timeout = e.is_timeout();
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        let text = self.redact(&text);
        if timeout { Error::Timeout(text) } else { Error::Network(text) }
    }

    async fn decode<Output: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        response: reqwest::Response,
    ) -> Result<Output> {
        let status = response.status();
        let body = response.text().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            return serde_json::from_str(&body).map_err(|e| Error::Decode {
                method: method.to_string(),
                reason: self.redact(&e.to_string()),
            });
        }
        match serde_json::from_str::<ErrorResponse>(&body) {
            Ok(resp) => Err(Error::from_response(resp)),
            // An nginx HTML 413 page, a proxy's 502 page: keep the status.
            Err(_) if status.as_u16() == 413 => {
                Err(Error::TooLarge { description: "Request Entity Too Large (non-JSON body)".into() })
            }
            Err(_) => Err(Error::Api {
                code: status.as_u16(),
                description: format!("HTTP {status} with a non-JSON body"),
                retry_after: None,
                migrate_to_chat_id: None,
            }),
        }
    }
}

impl Client {
    /// The bytes of a file a user sent (`getFile`, then `{api_url}/file/bot{token}/{path}`),
    /// refused past `max_bytes` (the cloud Bot API serves at most 20 MB). For small files
    /// such as a `.torrent`; the token never appears in an error.
    pub async fn download_file(&self, file_id: &str, max_bytes: u64) -> Result<Vec<u8>> {
        use frankenstein::AsyncTelegramApi;
        let params = frankenstein::methods::GetFileParams::builder().file_id(file_id).build();
        let file = self.get_file(&params).await?.result;
        if let Some(size) = file.file_size
            && size > max_bytes
        {
            return Err(Error::TooLarge {
                description: format!("the file is {size} bytes, more than {max_bytes}"),
            });
        }
        let Some(path) = file.file_path else {
            return Err(Error::Decode {
                method: "getFile".into(),
                reason: "no file_path in the answer (the file may be too big to download)".into(),
            });
        };
        let url = format!("{}/file/bot{}/{path}", self.base, self.token);
        let mut response = self
            .http
            .get(url)
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !response.status().is_success() {
            return Err(Error::Api {
                code: response.status().as_u16(),
                description: format!("downloading the file answered HTTP {}", response.status()),
                retry_after: None,
                migrate_to_chat_id: None,
            });
        }
        let mut out = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(e))? {
            if out.len() as u64 + chunk.len() as u64 > max_bytes {
                return Err(Error::TooLarge {
                    description: format!("the file is more than {max_bytes} bytes"),
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// `sendDocument` (or `sendVideo`) of a file slice, streamed from disk (no total
    /// timeout, as for any upload).
    async fn send_slice(
        &self,
        request: &crate::scheduler::SendDocumentSlice,
    ) -> Result<frankenstein::types::Message> {
        let form = upload::slice_form(request).await?;
        let response = self
            .http
            .post(self.endpoint(request.method()))
            .multipart(form)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let sent: frankenstein::response::MethodResponse<frankenstein::types::Message> =
            self.decode(request.method(), response).await?;
        Ok(sent.result)
    }
}

#[async_trait::async_trait]
impl AsyncTelegramApi for Client {
    type Error = Error;

    async fn request<Params, Output>(&self, method: &str, params: Option<Params>) -> Result<Output>
    where
        Params: serde::ser::Serialize + std::fmt::Debug + std::marker::Send,
        Output: serde::de::DeserializeOwned,
    {
        let body = match &params {
            Some(p) => Some(serde_json::to_value(p).map_err(|e| Error::Invalid {
                what: "request parameters",
                reason: format!("{method}: {e}"),
            })?),
            None => None,
        };
        let timeout = if method.eq_ignore_ascii_case("getUpdates") {
            let poll = body.as_ref().and_then(|b| b.get("timeout")).and_then(serde_json::Value::as_u64);
            // Saturating: a margin of `Duration::MAX` means no timeout, not a panic.
            Duration::from_secs(poll.unwrap_or(0)).saturating_add(self.poll_margin)
        } else {
            self.request_timeout
        };
        let mut request = self.http.post(self.endpoint(method)).timeout(timeout);
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(body.to_string());
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        self.decode(method, response).await
    }

    async fn request_with_form_data<Params, Output>(
        &self,
        method: &str,
        params: Params,
        files: Vec<(&str, PathBuf)>,
    ) -> Result<Output>
    where
        Params: serde::ser::Serialize + std::fmt::Debug + std::marker::Send,
        Output: serde::de::DeserializeOwned,
    {
        let params = serde_json::to_value(&params)
            .map_err(|e| Error::Invalid { what: "request parameters", reason: format!("{method}: {e}") })?;
        let form = upload::form(params, files, self.progress.clone()).await?;
        let response = self
            .http
            .post(self.endpoint(method))
            .multipart(form)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        self.decode(method, response).await
    }
}

impl Transport for Client {
    async fn execute(&self, request: &Request) -> Result<Response> {
        let message = |m: frankenstein::types::Message| Response::Message(Box::new(m));
        match request {
            Request::SendMessage(p) => self.send_message(p).await.map(|r| message(r.result)),
            Request::EditMessageText(p) => self.edit_message_text(p).await.map(|r| match r.result {
                MessageOrBool::Message(m) => Response::Message(m),
                MessageOrBool::Bool(_) => Response::Done,
            }),
            Request::DeleteMessage(p) => self.delete_message(p).await.map(|_| Response::Done),
            Request::SendDocument(p) => self.send_document(p).await.map(|r| message(r.result)),
            Request::SendVideo(p) => self.send_video(p).await.map(|r| message(r.result)),
            Request::SendDocumentSlice(p) => self.send_slice(p).await.map(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_and_debug_never_show_the_token() {
        // A port nothing listens on: connection refused, with the URL in reqwest's error.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let token = "123456:SECRET-token-value";
        let client = Client::builder(token).api_url(format!("http://127.0.0.1:{port}/")).build().unwrap();
        let err = client.get_me().await.unwrap_err();
        assert!(matches!(err, Error::Network(_)), "{err:?}");
        for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
            assert!(!text.contains("SECRET"), "token leaked: {text}");
        }
        assert_eq!(client.redact("x/bot123456:SECRET-token-value/getMe"), "x/bot<token>/getMe");
    }

    #[tokio::test]
    async fn an_endless_poll_margin_is_no_timeout_not_a_panic() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Client::builder("123456:secret")
            .api_url(format!("http://127.0.0.1:{port}"))
            .poll_margin(Duration::MAX)
            .build()
            .unwrap();
        let params = frankenstein::methods::GetUpdatesParams::builder().timeout(30).build();
        let err = client.get_updates(&params).await.unwrap_err();
        assert!(matches!(err, Error::Network(_)), "{err:?}");
    }

    #[test]
    fn bad_tokens_are_refused() {
        for bad in ["", "12/34", "a b"] {
            let err = Client::builder(bad).build().unwrap_err();
            assert!(err.to_string().contains("bot token"), "{err}");
        }
    }
}
