//! Telegram's limits shared by several instances of one bot, through Redis: each request
//! takes a cell of the bot's overall budget, of its chat's and (groups) of its group's,
//! all three at once or none ([`TieredRedisLimiter::check_all`]), on top of each
//! instance's own scheduler limits. N instances together then stay within Telegram's
//! limits as one would. Once a request to a chat is answered, the chat's bucket is held
//! back for Telegram's window ([`Limits::answer_gap`]), so the next request to it, from
//! any instance, goes that long after this one reached Telegram however late it did.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use mltb_ratelimit::{Fallback, Limit, TieredRedisLimiter};
use mltb_telegram::scheduler::{ChatKey, Limits, SharedLimits};

const ALL: &str = "all";
const CHAT: &str = "chat";
const GROUP: &str = "group";

/// [`SharedLimits`] over Redis, for the scheduler of each instance of one bot.
///
/// The buckets are Redis keys under `mltb:tg:<bot id>:`, so two bots on one Redis do not
/// share a budget. While Redis cannot answer, requests are let through: each instance's
/// scheduler still keeps Telegram's limits on its own, so the instances together may
/// then send up to N times them (the limiter logs the outage and its end).
#[derive(Debug)]
pub struct SharedTelegramLimits {
    limiter: TieredRedisLimiter<&'static str>,
}

impl SharedTelegramLimits {
    /// `limits` (the scheduler's) shared through the Redis at `redis_url`, for the bot
    /// whose numeric id is `bot_id`.
    pub fn new(redis_url: &str, bot_id: u64, limits: Limits) -> Result<Self, crate::Error> {
        let limiter = TieredRedisLimiter::builder(redis_url)
            .prefix(format!("mltb:tg:{bot_id}:"))
            .tier(ALL, Limit::Quota(limits.global))
            .tier(CHAT, Limit::Quota(limits.per_chat))
            .tier(GROUP, Limit::Quota(limits.per_group))
            .fallback(Fallback::Allow)
            .build()
            .map_err(|e| crate::Error::Config(format!("shared Telegram limits: {e}")))?;
        Ok(Self { limiter })
    }

    /// Takes the cells of one request to `chat`, waiting while any bucket is spent.
    pub async fn take(&self, chat: Option<&ChatKey>) {
        let key = chat.map(bucket_key);
        let mut buckets: Vec<(&&'static str, &str)> = vec![(&ALL, "bot")];
        if let (Some(chat), Some(key)) = (chat, key.as_deref()) {
            buckets.push((&CHAT, key));
            if chat.is_group() {
                buckets.push((&GROUP, key));
            }
        }
        loop {
            match self.limiter.check_all(&buckets).await {
                Ok(d) if d.limited => {
                    tokio::time::sleep(d.retry_after.max(std::time::Duration::from_millis(1))).await
                }
                Ok(_) => return,
                // Every tier is listed in `new`; should one not be, the scheduler's own
                // limits still hold.
                Err(e) => {
                    tracing::error!(error = %e, "a shared Telegram limit refused a listed tier");
                    return;
                }
            }
        }
    }

    /// Holds `chat`'s bucket back for `gap` once the answer to a request to it is in
    /// ([`Limits::answer_gap`]): every instance's next request to the chat then goes at
    /// least `gap` after that one reached Telegram. While Redis cannot answer nothing is
    /// held, and each instance's own gap still holds.
    pub async fn hold(&self, chat: &ChatKey, gap: Duration) {
        let key = bucket_key(chat);
        if let Err(e) = self.limiter.hold_all(&[(&CHAT, &key)], gap).await {
            // `CHAT` is listed in `new`.
            tracing::error!(error = %e, "a shared Telegram limit refused a listed tier");
        }
    }
}

/// The part of a chat's bucket names that tells chats apart.
fn bucket_key(chat: &ChatKey) -> String {
    match chat {
        ChatKey::Id(id) => id.to_string(),
        ChatKey::Username(name) => name.clone(),
    }
}

impl SharedLimits for SharedTelegramLimits {
    fn acquire<'a>(&'a self, chat: Option<&'a ChatKey>) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.take(chat))
    }

    fn answered<'a>(
        &'a self,
        chat: &'a ChatKey,
        gap: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.hold(chat, gap))
    }
}
