//! Who may do what: the owner (from the config), sudo users and authorized chats and
//! users (from the store, read through its cache, plus those the config names), and
//! everyone else, who gets one polite refusal and then silence for a while.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mltb_store::{Backend, Role, Store};

/// A sender's standing, most powerful first. It is also the command quota's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// The bot's owner (the config's `owner_id`).
    Owner,
    /// A sudo user (`/addsudo`, or the config's `auth.sudo_users`).
    Sudo,
    /// An authorized user, or anyone in an authorized chat.
    Authorized,
    /// Anyone else: refused.
    Guest,
    /// Banned: ignored.
    Banned,
}

impl Access {
    /// Owner or sudo.
    pub fn is_admin(self) -> bool {
        matches!(self, Access::Owner | Access::Sudo)
    }

    /// Whether commands are served at all.
    pub fn may_use(self) -> bool {
        matches!(self, Access::Owner | Access::Sudo | Access::Authorized)
    }
}

/// Resolves a sender's [`Access`] and remembers whom it refused, to refuse each person
/// only once per window.
#[derive(Debug)]
pub struct Auth<B: Backend> {
    store: Arc<Store<B>>,
    owner: i64,
    sudo: HashSet<i64>,
    chats: HashSet<i64>,
    silence: Duration,
    refused: Mutex<HashMap<i64, Instant>>,
}

/// Refusals remembered at most; older ones are dropped first when full.
const MAX_REFUSED: usize = 10_000;

impl<B: Backend> Auth<B> {
    /// Access for `owner`, the config's `sudo` users and authorized `chats`, and what the
    /// store holds; refused people hear nothing more for `silence`.
    pub fn new(
        store: Arc<Store<B>>,
        owner: i64,
        sudo: impl IntoIterator<Item = i64>,
        chats: impl IntoIterator<Item = i64>,
        silence: Duration,
    ) -> Self {
        Self {
            store,
            owner,
            sudo: sudo.into_iter().collect(),
            chats: chats.into_iter().collect(),
            silence,
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// The owner's user id.
    pub fn owner(&self) -> i64 {
        self.owner
    }

    /// Whether `user` is a sudo user: named in the config's `auth.sudo_users`, or sudo in
    /// the store. Only the owner may change such a user's standing.
    pub async fn is_sudo(&self, user: i64) -> mltb_store::Result<bool> {
        if self.sudo.contains(&user) {
            return Ok(true);
        }
        Ok(matches!(self.store.role(user).await?, Some(Role::Owner | Role::Sudo)))
    }

    /// The standing of `user` writing in `chat`.
    pub async fn access(&self, user: i64, chat: i64) -> mltb_store::Result<Access> {
        if user == self.owner {
            return Ok(Access::Owner);
        }
        let role = self.store.role(user).await?;
        match role {
            Some(Role::Banned) => return Ok(Access::Banned),
            Some(Role::Owner | Role::Sudo) => return Ok(Access::Sudo),
            _ => {}
        }
        // The config's sudo users stay sudo whatever lesser role the store holds.
        if self.sudo.contains(&user) {
            return Ok(Access::Sudo);
        }
        if role == Some(Role::Authorized)
            || self.chats.contains(&chat)
            || self.store.is_chat_authorized(chat).await?
        {
            return Ok(Access::Authorized);
        }
        Ok(Access::Guest)
    }

    /// Whether `user` should be told they are refused now: the first time, and again
    /// once `silence` has passed since the last time they were told.
    pub fn tell_refusal(&self, user: i64, now: Instant) -> bool {
        let mut refused = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = refused.get(&user)
            && now.saturating_duration_since(*at) < self.silence
        {
            return false;
        }
        if refused.len() >= MAX_REFUSED {
            let silence = self.silence;
            refused.retain(|_, at| now.saturating_duration_since(*at) < silence);
            if refused.len() >= MAX_REFUSED
                && let Some(oldest) = refused.iter().min_by_key(|(_, at)| **at).map(|(u, _)| *u)
            {
                refused.remove(&oldest);
            }
        }
        refused.insert(user, now);
        true
    }
}
