//! Updates from simulated users: messages, replies, documents, button presses.

use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::api::methods::{self, Kind, Source};
use crate::api::params::{Upload, hex};
use crate::entities::FormattedText;
use crate::error::{Error, Result};
use crate::state::{Shared, command_entities};

impl Shared {
    /// A text message (a command when it starts with `/`), optionally replying to a message.
    pub(crate) fn send_text(&self, chat_id: i64, from_user: i64, text: &str, reply_to: Option<i32>) -> i64 {
        let owned = text.to_owned();
        self.inject_message(
            chat_id,
            from_user,
            |m, st| {
                m.insert("text".into(), json!(owned));
                if let Some(entities) = command_entities(&owned) {
                    m.insert("entities".into(), entities);
                }
                if let Some(reply) = reply_to.and_then(|id| st.message(chat_id, id)) {
                    m.insert("reply_to_message".into(), methods::embedded(&reply.json));
                }
            },
            Some(FormattedText::plain(text)),
            None,
            None,
        )
    }

    /// A document from a user: the bytes are stored and get a reusable `file_id`.
    pub(crate) fn send_document(
        &self,
        chat_id: i64,
        from_user: i64,
        file_name: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<i64> {
        let dir = self.files_dir.join("uploads");
        let io = |e| Error::io(format!("storing injected document {file_name:?} in {}", dir.display()), e);
        let mut tmp = NamedTempFile::new_in(&dir).map_err(io)?;
        tmp.write_all(bytes).map_err(io)?;
        let upload = Upload {
            tmp,
            file_name: Some(file_name.to_owned()),
            mime: None,
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(bytes)),
        };
        let file = {
            let mut st = self.lock();
            methods::register(self, &mut st, Kind::Document, Source::Upload(upload)).map_err(|e| {
                Error::io("storing an injected document", std::io::Error::other(e.description))
            })?
        };
        let record = file.record.clone();
        let caption_owned = caption.map(str::to_owned);
        Ok(self.inject_message(
            chat_id,
            from_user,
            |m, _| {
                m.insert("document".into(), methods::file_json(Kind::Document, &file, Default::default()));
                if let Some(c) = &caption_owned {
                    m.insert("caption".into(), Value::String(c.clone()));
                }
            },
            None,
            caption.map(FormattedText::plain),
            Some(record),
        ))
    }
}
