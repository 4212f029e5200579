//! Users, roles, authorized chats, settings and the audit log.

use super::{CacheKey, Cached, Store, sql};
use crate::limits::{self, check, check_opt};
use crate::{AuditEntry, Backend, Error, NewAuditEntry, Result, Role, Statement, User, UserSettings, Value};

fn audit_statement(entry: &NewAuditEntry, now: i64) -> Result<Statement> {
    check("audit.action", &entry.action, limits::AUDIT_ACTION)?;
    check_opt("audit.detail", entry.detail.as_deref(), limits::AUDIT_DETAIL)?;
    Ok(Statement::query(
        sql::AUDIT,
        vec![
            Value::Int(entry.actor),
            entry.action.as_str().into(),
            entry.target.into(),
            entry.detail.clone().into(),
            Value::Int(now),
        ],
    ))
}

fn entry(actor: i64, action: &str, target: i64, detail: Option<String>) -> NewAuditEntry {
    NewAuditEntry { actor, action: action.to_owned(), target: Some(target), detail }
}

impl<B: Backend> Store<B> {
    /// `statements`, then (PostgreSQL) the notification for `key`, then `last`: one
    /// transaction, so the notification goes out only if the write commits.
    fn with_notify(&self, mut statements: Vec<Statement>, key: &CacheKey, last: Statement) -> Vec<Statement> {
        statements.extend(self.notify(key));
        statements.push(last);
        statements
    }

    /// The user's role, or `None` for a guest. Read through the cache.
    pub async fn role(&self, user: i64) -> Result<Option<Role>> {
        let this = self.clone();
        let cached = self
            .cached(CacheKey::Role(user), || async move {
                let out = this.run_one(Statement::query(sql::ROLE, vec![Value::Int(user)])).await?;
                let role = out.rows.first().map(|r| r.text(0)?.parse::<Role>()).transpose()?;
                Ok(Cached::Role(role))
            })
            .await?;
        match cached {
            Cached::Role(role) => Ok(role),
            other => Err(Error::decode("cache", format!("expected a role, found {other:?}"))),
        }
    }

    /// Gives `user` a role, recording who did it in the audit log (one transaction).
    pub async fn set_role(&self, actor: i64, user: i64, role: Role) -> Result<()> {
        let now = self.inner.shared.now_ms();
        let audit = audit_statement(&entry(actor, "set_role", user, Some(role.as_str().into())), now)?;
        let upsert = Statement::execute(
            sql::UPSERT_ROLE,
            vec![Value::Int(user), role.as_str().into(), Value::Int(now)],
        );
        let key = CacheKey::Role(user);
        let out = self.run(self.with_notify(vec![upsert], &key, audit), true).await;
        // Even on an error: the commit may have happened, and this store skips the
        // notification of its own write.
        self.invalidate(&key);
        out?;
        Ok(())
    }

    /// Takes `user`'s role away (they become a guest), recording it in the audit log.
    /// `false` if they had none.
    pub async fn remove_user(&self, actor: i64, user: i64) -> Result<bool> {
        let audit = audit_statement(&entry(actor, "remove_user", user, None), self.inner.shared.now_ms())?;
        let key = CacheKey::Role(user);
        let delete = Statement::execute(sql::DELETE_USER, vec![Value::Int(user)]);
        let out = self.run(self.with_notify(vec![delete], &key, audit), true).await;
        self.invalidate(&key);
        let out = out?;
        Ok(out.first().is_some_and(|o| o.affected > 0))
    }

    /// Every user with a role, by id.
    pub async fn users(&self) -> Result<Vec<User>> {
        let out = self.run_one(Statement::query(sql::USERS, vec![])).await?;
        out.rows
            .iter()
            .map(|r| Ok(User { id: r.int(0)?, role: r.text(1)?.parse()?, updated_at: r.int(2)? }))
            .collect()
    }

    /// Whether the chat is authorized. Read through the cache.
    pub async fn is_chat_authorized(&self, chat: i64) -> Result<bool> {
        let this = self.clone();
        let cached = self
            .cached(CacheKey::Chat(chat), || async move {
                let out =
                    this.run_one(Statement::query(sql::CHAT_AUTHORIZED, vec![Value::Int(chat)])).await?;
                let n = out.rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
                Ok(Cached::Chat(n > 0))
            })
            .await?;
        match cached {
            Cached::Chat(ok) => Ok(ok),
            other => Err(Error::decode("cache", format!("expected a chat flag, found {other:?}"))),
        }
    }

    /// Authorizes a chat, recording it in the audit log. `false` if it already was.
    pub async fn authorize_chat(&self, actor: i64, chat: i64) -> Result<bool> {
        let now = self.inner.shared.now_ms();
        let audit = audit_statement(&entry(actor, "authorize_chat", chat, None), now)?;
        let insert = Statement::execute(
            sql::AUTHORIZE_CHAT,
            vec![Value::Int(chat), Value::Int(actor), Value::Int(now)],
        );
        let key = CacheKey::Chat(chat);
        let out = self.run(self.with_notify(vec![insert], &key, audit), true).await;
        self.invalidate(&key);
        let out = out?;
        Ok(out.first().is_some_and(|o| o.affected > 0))
    }

    /// Withdraws a chat's authorization, recording it in the audit log. `false` if it
    /// was not authorized.
    pub async fn unauthorize_chat(&self, actor: i64, chat: i64) -> Result<bool> {
        let audit =
            audit_statement(&entry(actor, "unauthorize_chat", chat, None), self.inner.shared.now_ms())?;
        let delete = Statement::execute(sql::UNAUTHORIZE_CHAT, vec![Value::Int(chat)]);
        let key = CacheKey::Chat(chat);
        let out = self.run(self.with_notify(vec![delete], &key, audit), true).await;
        self.invalidate(&key);
        let out = out?;
        Ok(out.first().is_some_and(|o| o.affected > 0))
    }

    /// Every authorized chat, by id.
    pub async fn authorized_chats(&self) -> Result<Vec<i64>> {
        let out = self.run_one(Statement::query(sql::CHATS, vec![])).await?;
        out.rows.iter().map(|r| r.int(0)).collect()
    }

    /// The user's settings (all `None` when they set nothing). Read through the cache.
    pub async fn settings(&self, user: i64) -> Result<UserSettings> {
        let this = self.clone();
        let cached = self
            .cached(CacheKey::Settings(user), || async move {
                let out = this.run_one(Statement::query(sql::SETTINGS, vec![Value::Int(user)])).await?;
                let Some(r) = out.rows.first() else { return Ok(Cached::Settings(UserSettings::default())) };
                let split_size = match r.opt_int(1)? {
                    Some(n) => Some(u64::try_from(n).map_err(|_| Error::decode("split_size", "negative"))?),
                    None => None,
                };
                Ok(Cached::Settings(UserSettings {
                    as_document: r.opt_int(0)?.map(|v| v != 0),
                    split_size,
                    upload_dest: r.opt_text(2)?,
                    name_prefix: r.opt_text(3)?,
                }))
            })
            .await?;
        match cached {
            Cached::Settings(s) => Ok(s),
            other => Err(Error::decode("cache", format!("expected settings, found {other:?}"))),
        }
    }

    /// Replaces the user's settings.
    pub async fn put_settings(&self, user: i64, settings: &UserSettings) -> Result<()> {
        check_opt("settings.upload_dest", settings.upload_dest.as_deref(), limits::UPLOAD_DEST)?;
        check_opt("settings.name_prefix", settings.name_prefix.as_deref(), limits::NAME_PREFIX)?;
        let split = match settings.split_size {
            Some(0) => {
                return Err(Error::Invalid {
                    field: "settings.split_size",
                    reason: "must be at least 1 byte".into(),
                });
            }
            Some(n) => Some(limits::to_i64("settings.split_size", n)?),
            None => None,
        };
        let upsert = Statement::execute(
            sql::UPSERT_SETTINGS,
            vec![
                Value::Int(user),
                settings.as_document.map(i64::from).into(),
                split.into(),
                settings.upload_dest.clone().into(),
                settings.name_prefix.clone().into(),
                Value::Int(self.inner.shared.now_ms()),
            ],
        );
        let key = CacheKey::Settings(user);
        let out = match self.notify(&key) {
            Some(notify) => self.run(vec![upsert, notify], true).await.map(drop),
            None => self.run_one(upsert).await.map(drop),
        };
        self.invalidate(&key);
        out?;
        Ok(())
    }

    /// Appends a privileged action to the audit log and returns its id. The log has
    /// no update or delete API, and the database refuses both.
    pub async fn audit(&self, entry: &NewAuditEntry) -> Result<i64> {
        let out = self.run_one(audit_statement(entry, self.inner.shared.now_ms())?).await?;
        out.rows.first().map_or_else(|| Err(Error::decode("audit_log.id", "no id returned")), |r| r.int(0))
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let out = self.run_one(Statement::query(sql::AUDIT_LOG, vec![Value::Int(limit.into())])).await?;
        out.rows
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.int(0)?,
                    actor: r.int(1)?,
                    action: r.text(2)?,
                    target: r.opt_int(3)?,
                    detail: r.opt_text(4)?,
                    at: r.int(5)?,
                })
            })
            .collect()
    }
}
