//! Command quotas, one tier per role: in this process, or shared by every instance
//! through Redis when `MLTB_REDIS_URL` is set.

use std::time::Duration;

use mltb_ratelimit::{Limit, TieredLimiter, TieredRedisLimiter};

use crate::auth::Access;
use crate::config::CommandsSection;

impl AsRef<str> for Access {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

/// Commands per role: the config's `[commands]` quotas.
#[derive(Debug)]
pub(crate) enum CommandQuota {
    /// In this process.
    Local(TieredLimiter<Access, i64>),
    /// One budget per (role, user) shared through Redis; if Redis cannot be reached, each
    /// process answers alone with the same quotas.
    Redis(Box<TieredRedisLimiter<Access>>),
}

/// The Redis keys' prefix.
pub(crate) const REDIS_PREFIX: &str = "mltb:commands:";

impl CommandQuota {
    /// The quotas of `q`, shared through Redis at `redis_url` when given.
    pub(crate) fn new(q: &CommandsSection, redis_url: Option<&str>) -> Result<Self, crate::Error> {
        let tiers = [
            (Access::Owner, q.owner.quota()),
            (Access::Sudo, q.sudo.quota()),
            (Access::Authorized, q.authorized.quota()),
            (Access::Guest, q.guest.quota()),
            (Access::Banned, q.guest.quota()),
        ];
        let error = |e: mltb_ratelimit::Error| crate::Error::Config(format!("commands: {e}"));
        match redis_url {
            None => {
                let mut b = TieredLimiter::builder();
                for (tier, quota) in tiers {
                    b = b.tier(tier, Limit::Quota(quota));
                }
                Ok(Self::Local(b.build().map_err(error)?))
            }
            Some(url) => {
                let mut b = TieredRedisLimiter::builder(url).prefix(REDIS_PREFIX);
                for (tier, quota) in tiers {
                    b = b.tier(tier, Limit::Quota(quota));
                }
                Ok(Self::Redis(Box::new(b.build().map_err(error)?)))
            }
        }
    }

    /// Takes one command from `user`'s budget in `role`; when it is spent, how long until
    /// the next one is allowed (if known).
    pub(crate) async fn check(&self, role: Access, user: i64) -> Result<(), Option<Duration>> {
        match self {
            Self::Local(l) => l.check_in(&role, &user).map_err(|d| d.retry_after()),
            // The Redis limiter answers a spent budget with a decision marked `limited`.
            Self::Redis(l) => match l.check_in(&role, &user.to_string()).await {
                Ok(d) if d.limited => Err(Some(d.retry_after)),
                Ok(_) => Ok(()),
                Err(denied) => Err(denied.retry_after()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Env};

    fn commands(authorized: &str) -> CommandsSection {
        let env = Env::from_pairs([("MLTB_OWNER_ID", "1"), ("MLTB_COMMANDS_AUTHORIZED", authorized)]);
        Config::from_toml("", &env).unwrap().commands
    }

    #[tokio::test]
    async fn a_local_quota_is_per_role_and_user() {
        let q = CommandQuota::new(&commands("2/1m"), None).unwrap();
        assert!(q.check(Access::Authorized, 7).await.is_ok());
        assert!(q.check(Access::Authorized, 7).await.is_ok());
        let wait = q.check(Access::Authorized, 7).await.unwrap_err();
        assert!(wait.is_some_and(|d| d > Duration::ZERO && d <= Duration::from_secs(60)), "{wait:?}");
        assert!(q.check(Access::Authorized, 8).await.is_ok(), "another user has their own budget");
        assert!(q.check(Access::Sudo, 7).await.is_ok(), "another role has its own budget");
    }

    #[tokio::test]
    async fn a_redis_quota_is_shared_by_every_instance() {
        let redis = mltb_testkit::redis::SharedRedis::get()
            .await
            .expect("Redis: set REDIS_URL, or install it (sudo apt-get install redis-server)");
        let user = i64::from(std::process::id()) * 1000 + i64::from(rand_suffix());
        let a = CommandQuota::new(&commands("3/1m"), Some(redis.url())).unwrap();
        let b = CommandQuota::new(&commands("3/1m"), Some(redis.url())).unwrap();
        assert!(matches!(a, CommandQuota::Redis(_)));
        assert!(a.check(Access::Authorized, user).await.is_ok());
        assert!(b.check(Access::Authorized, user).await.is_ok());
        assert!(a.check(Access::Authorized, user).await.is_ok());
        let fourth = b.check(Access::Authorized, user).await;
        if let (CommandQuota::Redis(la), CommandQuota::Redis(lb)) = (&a, &b) {
            assert_eq!(
                (la.fallback_count(), lb.fallback_count()),
                (0, 0),
                "Redis answered: {:?} {:?}",
                la.stats(),
                lb.stats()
            );
        }
        assert!(fourth.is_err(), "the fourth, from either instance, is over the shared budget");
        assert!(a.check(Access::Authorized, user).await.is_err());
        if let CommandQuota::Redis(l) = &a {
            assert!(l.redis_count() > 0 && l.fallback_count() == 0, "Redis answered, not the fallback");
        }
    }

    fn rand_suffix() -> u16 {
        let mut b = [0u8; 2];
        getrandom::fill(&mut b).unwrap();
        u16::from_le_bytes(b) % 1000
    }
}
