//! Signed callback data: what a board button does, for which chat and user, bound to the
//! bot's key so that a forged button, or one copied into another chat, does nothing.
//!
//! # Wire form
//!
//! `callback_data` is the unpadded base64url of
//!
//! ```text
//! header   1 byte   version (high nibble, 1) and action code (low nibble)
//! chat     zigzag varint   the chat the board is in
//! user     zigzag varint   the user allowed to act; 0 for anyone in the chat
//! issued   varint          when the button was made, Unix seconds (u32)
//! arg      varint          Show: the page; the other actions: the task id (zigzag)
//! mac      12 bytes        HMAC-SHA256(key, "mltb/board/1" || the bytes above), truncated
//! ```
//!
//! At most 1 + 10 + 10 + 5 + 10 + 12 = 48 bytes, so at most 64 characters: within
//! Telegram's 64-byte limit whatever the ids. A 96-bit tag cannot be guessed through
//! button presses, which Telegram itself rate-limits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mltb_telegram::format::CallbackData;
use sha2::{Digest, Sha256};

use super::error::{ButtonError, Error};

/// The wire version in each button's header.
const VERSION: u8 = 1;
/// Prefixed to every signed payload, so the key signs nothing else by accident.
const DOMAIN: &[u8] = b"mltb/board/1";
/// Bytes of the truncated HMAC kept in each button.
const MAC_LEN: usize = 12;
/// How far in the future a button's time may be (clock skew between restarts).
const MAX_SKEW_SECS: i64 = 60;
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// The secret that signs board buttons. `Debug` never shows it.
///
/// ```
/// use mltb_bot::board::SigningKey;
/// assert!(SigningKey::new(vec![7u8; 32]).is_ok());
/// let err = SigningKey::new(b"short".to_vec()).unwrap_err();
/// assert!(err.to_string().contains("at least 32 bytes"), "{err}");
/// assert_eq!(format!("{:?}", SigningKey::new(vec![7u8; 32])?), "SigningKey(<redacted>)");
/// # Ok::<(), mltb_bot::board::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Arc<[u8]>);

impl SigningKey {
    /// A key of at least [`MIN_KEY_BYTES`] bytes (e.g. 32 random bytes, or a long
    /// passphrase from the bot's config).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(Error::config(
                "signing_key",
                format!("is {} bytes; expected at least {MIN_KEY_BYTES} bytes", bytes.len()),
            ));
        }
        Ok(Self(bytes.into()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// What a board button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Show `page` (from 0), freshly rendered: the refresh, previous and next buttons.
    Show {
        /// The page to show; past the last page shows the last.
        page: u16,
    },
    /// Ask to cancel `task`: the board then shows "Confirm cancel" and "Back" for it.
    Cancel {
        /// The task.
        task: i64,
    },
    /// Cancel `task` now (the second press).
    ConfirmCancel {
        /// The task.
        task: i64,
    },
    /// Leave the confirmation for `task` without cancelling it.
    Back {
        /// The task.
        task: i64,
    },
}

impl Action {
    fn code(self) -> u8 {
        match self {
            Action::Show { .. } => 1,
            Action::Cancel { .. } => 2,
            Action::ConfirmCancel { .. } => 3,
            Action::Back { .. } => 4,
        }
    }

    /// Whether this is the second step of a cancel (confirm or back), which expires
    /// sooner than the board's other buttons.
    pub fn is_confirmation(self) -> bool {
        matches!(self, Action::ConfirmCancel { .. } | Action::Back { .. })
    }
}

/// A button's signed content, as made by [`Signer::sign`] and returned by
/// [`Signer::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Button {
    /// The chat whose board carries it; a press from another chat is refused.
    pub chat: i64,
    /// The user allowed to act (the task's user for a cancel, the asker for its
    /// confirmation); `None` for anyone in the chat.
    pub user: Option<i64>,
    /// When it was made, in Unix seconds; it expires after the signer's TTL.
    pub issued: u32,
    /// What it does.
    pub action: Action,
}

impl Button {
    /// A button of `chat` doing `action`, made at `now_ms` (Unix milliseconds).
    pub fn new(chat: i64, action: Action, now_ms: i64) -> Self {
        let secs = now_ms.div_euclid(1000).clamp(0, i64::from(u32::MAX));
        Self { chat, user: None, issued: u32::try_from(secs).unwrap_or(u32::MAX), action }
    }

    /// Only `user` may act on it.
    pub fn for_user(mut self, user: i64) -> Self {
        self.user = Some(user);
        self
    }
}

/// Signs and verifies board buttons with one [`SigningKey`].
///
/// ```
/// use std::time::Duration;
/// use mltb_bot::board::{Action, Button, ButtonError, Signer, SigningKey};
///
/// let signer = Signer::new(SigningKey::new([9u8; 32])?);
/// let now_ms = 1_700_000_000_000;
/// let button = Button::new(-1001234567890, Action::Cancel { task: 42 }, now_ms).for_user(7);
/// let data = signer.sign(&button);
/// assert!(data.as_str().len() <= 64);
///
/// // The chat the press came from must be the one signed.
/// assert_eq!(signer.verify(data.as_str(), -1001234567890, now_ms), Ok(button));
/// assert!(matches!(signer.verify(data.as_str(), 555, now_ms), Err(ButtonError::WrongChat { .. })));
/// // Any change to the data breaks the signature.
/// let mut forged = data.as_str().to_string();
/// forged.replace_range(3..4, if &forged[3..4] == "A" { "B" } else { "A" });
/// assert!(signer.verify(&forged, -1001234567890, now_ms).is_err());
/// // Old buttons expire.
/// let later = now_ms + Duration::from_secs(2 * 3600).as_millis() as i64;
/// assert!(matches!(signer.verify(data.as_str(), -1001234567890, later), Err(ButtonError::Expired { .. })));
/// # Ok::<(), mltb_bot::board::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Signer {
    key: SigningKey,
    button_ttl: Duration,
    confirm_ttl: Duration,
}

impl Signer {
    /// A signer whose buttons last an hour, and confirmations a minute.
    pub fn new(key: SigningKey) -> Self {
        Self { key, button_ttl: Duration::from_secs(3600), confirm_ttl: Duration::from_secs(60) }
    }

    /// How long the board's buttons are accepted after they were made. The board is
    /// re-rendered (with fresh buttons) at each refresh, so only a board that stopped
    /// being updated shows buttons this old.
    pub fn button_ttl(mut self, ttl: Duration) -> Self {
        self.button_ttl = ttl;
        self
    }

    /// How long "Confirm cancel" and "Back" are accepted after they were shown.
    pub fn confirm_ttl(mut self, ttl: Duration) -> Self {
        self.confirm_ttl = ttl;
        self
    }

    /// The TTL of confirmations.
    pub fn confirm_ttl_value(&self) -> Duration {
        self.confirm_ttl
    }

    /// The button's callback data: at most 64 bytes whatever its content.
    pub fn sign(&self, button: &Button) -> CallbackData {
        let arg = match button.action {
            Action::Show { page } => u64::from(page),
            Action::Cancel { task } | Action::ConfirmCancel { task } | Action::Back { task } => zigzag(task),
        };
        let data = self.seal(button.action.code(), button.chat, button.user.unwrap_or(0), button.issued, arg);
        CallbackData::new(data).unwrap_or_else(|e| unreachable!("signed buttons are at most 64 bytes: {e}"))
    }

    fn seal(&self, code: u8, chat: i64, user: i64, issued: u32, arg: u64) -> String {
        let mut bytes = Vec::with_capacity(48);
        bytes.push((VERSION << 4) | (code & 0x0f));
        put_varint(&mut bytes, zigzag(chat));
        put_varint(&mut bytes, zigzag(user));
        put_varint(&mut bytes, u64::from(issued));
        put_varint(&mut bytes, arg);
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac[..MAC_LEN]);
        base64url_encode(&bytes)
    }

    fn mac(&self, payload: &[u8]) -> [u8; 32] {
        let mut message = Vec::with_capacity(DOMAIN.len() + payload.len());
        message.extend_from_slice(DOMAIN);
        message.extend_from_slice(payload);
        hmac_sha256(&self.key.0, &message)
    }

    /// Checks `data` from a press in `chat` at `now_ms` (Unix milliseconds): the
    /// signature, the version and action, the chat, and the age. Who pressed is for the
    /// caller to check against [`Button::user`].
    pub fn verify(&self, data: &str, chat: i64, now_ms: i64) -> Result<Button, ButtonError> {
        let bytes = base64url_decode(data).ok_or(ButtonError::Malformed { reason: "not base64url" })?;
        if bytes.len() < 1 + 4 + MAC_LEN {
            return Err(ButtonError::Malformed { reason: "too short" });
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        if !constant_time_eq(&self.mac(payload)[..MAC_LEN], tag) {
            return Err(ButtonError::BadSignature);
        }
        let header = payload[0];
        if header >> 4 != VERSION {
            return Err(ButtonError::UnknownVersion { version: header >> 4 });
        }
        let mut rest = &payload[1..];
        let mut next = || take_varint(&mut rest).ok_or(ButtonError::Malformed { reason: "truncated field" });
        let signed_chat = unzigzag(next()?);
        let user = unzigzag(next()?);
        let issued =
            u32::try_from(next()?).map_err(|_| ButtonError::Malformed { reason: "time out of range" })?;
        let arg = next()?;
        if !rest.is_empty() {
            return Err(ButtonError::Malformed { reason: "trailing bytes" });
        }
        let action = match header & 0x0f {
            1 => Action::Show {
                page: u16::try_from(arg)
                    .map_err(|_| ButtonError::Malformed { reason: "page out of range" })?,
            },
            2 => Action::Cancel { task: unzigzag(arg) },
            3 => Action::ConfirmCancel { task: unzigzag(arg) },
            4 => Action::Back { task: unzigzag(arg) },
            code => return Err(ButtonError::UnknownAction { code }),
        };
        if signed_chat != chat {
            return Err(ButtonError::WrongChat { signed: signed_chat, pressed: chat });
        }
        let now = now_ms.div_euclid(1000);
        let age = now - i64::from(issued);
        if age < -MAX_SKEW_SECS {
            return Err(ButtonError::FromTheFuture);
        }
        let ttl = if action.is_confirmation() { self.confirm_ttl } else { self.button_ttl };
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        if age > ttl_secs {
            return Err(ButtonError::Expired { age: Duration::from_secs(age.unsigned_abs()) });
        }
        Ok(Button { chat: signed_chat, user: (user != 0).then_some(user), issued, action })
    }

    /// Signs a raw header code: lets tests forge an action this version does not know.
    #[cfg(test)]
    pub(crate) fn sign_raw(&self, code: u8, chat: i64, issued: u32, arg: u64) -> String {
        self.seal(code, chat, 0, issued, arg)
    }
}

/// HMAC-SHA256 (RFC 2104) over `sha2`: the workspace's `sha2` is 0.10, and the `hmac`
/// crate that fits it would be one more crate for twenty lines.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| {
        let mut p = block;
        p.iter_mut().for_each(|b| *b ^= byte);
        p
    };
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint in its shortest form (so each value has one encoding).
fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return None;
            }
            *input = &input[i + 1..];
            return Some(value);
        }
    }
    None
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// Decodes unpadded base64url, refusing any other form (padding, stray bits), so that
/// each byte string has exactly one encoding.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32);
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        // The bits past the last whole byte must be zero.
        if n & ((1 << (24 - 8 * bytes)) - 1) != 0 {
            return None;
        }
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW_MS: i64 = 1_750_000_000_000;

    fn signer() -> Signer {
        Signer::new(SigningKey::new(*b"0123456789abcdef0123456789abcdef").unwrap())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1, 2 and 6 (a key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn base64url_round_trips_and_refuses_other_forms() {
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(base64url_decode("-_8"), Some(b"\xfb\xff".to_vec()));
        for bad in ["-_9", "A", "AB=C", "A+/A", "é"] {
            assert_eq!(base64url_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let s = signer();
        let chat = -1_001_234_567_890;
        let data = s.sign(&Button::new(chat, Action::ConfirmCancel { task: 5 }, NOW_MS).for_user(9));
        let data = data.as_str();
        assert_eq!(s.verify(data, chat, NOW_MS).unwrap().user, Some(9));
        assert_eq!(s.verify(data, 1, NOW_MS), Err(ButtonError::WrongChat { signed: chat, pressed: 1 }));
        // Confirmations last a minute, other buttons an hour.
        assert!(matches!(s.verify(data, chat, NOW_MS + 61_000), Err(ButtonError::Expired { .. })));
        let show = s.sign(&Button::new(chat, Action::Show { page: 3 }, NOW_MS));
        assert!(s.verify(show.as_str(), chat, NOW_MS + 61_000).is_ok());
        assert!(matches!(
            s.verify(show.as_str(), chat, NOW_MS + 3_601_000),
            Err(ButtonError::Expired { .. })
        ));
        assert_eq!(s.verify(show.as_str(), chat, NOW_MS - 120_000), Err(ButtonError::FromTheFuture));
        // A key the bot does not have.
        let other = Signer::new(SigningKey::new([1u8; 32]).unwrap());
        assert_eq!(other.verify(show.as_str(), chat, NOW_MS), Err(ButtonError::BadSignature));
        // Signed, but an action this version does not know.
        let unknown = s.sign_raw(9, chat, (NOW_MS / 1000) as u32, 0);
        assert_eq!(s.verify(&unknown, chat, NOW_MS), Err(ButtonError::UnknownAction { code: 9 }));
        assert!(matches!(s.verify("not base64!", chat, NOW_MS), Err(ButtonError::Malformed { .. })));
        assert!(matches!(s.verify("AAAA", chat, NOW_MS), Err(ButtonError::Malformed { .. })));
        // The Python bot's plain data is not a board button.
        assert!(s.verify("status ref", chat, NOW_MS).is_err());
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            any::<u16>().prop_map(|page| Action::Show { page }),
            any::<i64>().prop_map(|task| Action::Cancel { task }),
            any::<i64>().prop_map(|task| Action::ConfirmCancel { task }),
            any::<i64>().prop_map(|task| Action::Back { task }),
        ]
    }

    fn button() -> impl Strategy<Value = Button> {
        (any::<i64>(), prop::option::of(any::<i64>().prop_filter("0 means anyone", |u| *u != 0)), action())
            .prop_map(|(chat, user, action)| Button { chat, user, issued: (NOW_MS / 1000) as u32, action })
    }

    proptest! {
        #[test]
        fn signed_data_fits_and_round_trips(b in button()) {
            let s = signer();
            let data = s.sign(&b);
            prop_assert!(!data.as_str().is_empty() && data.as_str().len() <= 64, "{} bytes", data.as_str().len());
            prop_assert_eq!(s.verify(data.as_str(), b.chat, NOW_MS), Ok(b));
        }

        #[test]
        fn any_tampering_is_refused(b in button(), at in any::<prop::sample::Index>(), with in 0usize..64) {
            let s = signer();
            let data = s.sign(&b).into_inner();
            let i = at.index(data.len());
            let mut bytes = data.into_bytes();
            let replacement = ALPHABET[with];
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let forged = String::from_utf8(bytes).unwrap();
            prop_assert!(s.verify(&forged, b.chat, NOW_MS).is_err());
        }

        #[test]
        fn another_chat_is_refused(b in button(), chat in any::<i64>()) {
            prop_assume!(chat != b.chat);
            let s = signer();
            let data = s.sign(&b);
            let refused = matches!(s.verify(data.as_str(), chat, NOW_MS), Err(ButtonError::WrongChat { .. }));
            prop_assert!(refused);
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,80}") {
            let _ = signer().verify(&text, 1, NOW_MS);
        }

        #[test]
        fn varints_and_base64_round_trip(v in any::<i64>(), bytes in prop::collection::vec(any::<u8>(), 0..60)) {
            let mut out = Vec::new();
            put_varint(&mut out, zigzag(v));
            let mut slice = out.as_slice();
            prop_assert_eq!(take_varint(&mut slice).map(unzigzag), Some(v));
            prop_assert!(slice.is_empty());
            prop_assert_eq!(base64url_decode(&base64url_encode(&bytes)), Some(bytes));
        }
    }
}
