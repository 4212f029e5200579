//! Only the owner changes a sudo user's standing: a sudo user's `/auth` or `/unauth` of
//! another sudo user (from `/addsudo` or the config's `auth.sudo_users`) is refused, and
//! a sudo user from the config stays sudo whatever the store says. Against the whole bot
//! (simulator, real aria2c, SQLite).

mod support;

use mltb_store::Role;
use support::{CHAT, Harness, OWNER, USER};

/// A sudo user from the config (`auth.sudo_users`).
const CONFIG_SUDO: i64 = 3000;
/// Sudo users the owner adds with `/addsudo`.
const ADDED_SUDO: i64 = 4000;
const OTHER_SUDO: i64 = 5000;
/// An ordinary user.
const PLAIN: i64 = 6000;

async fn start() -> Harness {
    let sudo = format!("[{CONFIG_SUDO}]");
    Harness::start(&[("MLTB_AUTH_SUDO_USERS", &sudo)], &[]).await
}

/// Sends `command` from `user` in their private chat; the bot's first answer there whose
/// text satisfies `matches`.
async fn ask(h: &Harness, user: i64, command: &str, matches: impl Fn(&str) -> bool) -> String {
    let mark = h.mark();
    h.sim.send_text(user, user, command);
    h.reply(user, mark, command, matches).await
}

/// Any answer to `command`.
async fn answer(h: &Harness, user: i64, command: &str) -> String {
    ask(h, user, command, |_| true).await
}

async fn add_sudo(h: &Harness, user: i64) {
    let command = format!("/addsudo {user}");
    assert_eq!(answer(h, OWNER, &command).await, format!("User {user} is sudo."));
}

/// Whether `user` is served as a sudo user: `/users` is for the owner and sudo users.
async fn is_served_as_sudo(h: &Harness, user: i64) -> bool {
    answer(h, user, "/users").await.starts_with("Owner: ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sudo_user_cannot_unauth_another_sudo_user() {
    let h = start().await;
    add_sudo(&h, ADDED_SUDO).await;

    let reply = answer(&h, CONFIG_SUDO, &format!("/unauth {ADDED_SUDO}")).await;
    assert_eq!(
        reply,
        format!("⛔ User {ADDED_SUDO} is a sudo user: only the owner may /unauth a sudo user.")
    );
    assert_eq!(h.store().role(ADDED_SUDO).await.unwrap(), Some(Role::Sudo));
    assert!(is_served_as_sudo(&h, ADDED_SUDO).await, "user {ADDED_SUDO} kept sudo");
    let reply = answer(&h, ADDED_SUDO, &format!("/unauth {CONFIG_SUDO}")).await;
    assert_eq!(
        reply,
        format!("⛔ User {CONFIG_SUDO} is a sudo user: only the owner may /unauth a sudo user.")
    );

    // Ordinary users are still the sudo users' to manage.
    let reply = answer(&h, ADDED_SUDO, &format!("/auth {PLAIN}")).await;
    assert_eq!(reply, format!("User {PLAIN} is authorized."));
    let reply = answer(&h, CONFIG_SUDO, &format!("/unauth {PLAIN}")).await;
    assert_eq!(reply, format!("User {PLAIN} is no longer authorized."));
    // And the owner may still do what a sudo user may not.
    let reply = answer(&h, OWNER, &format!("/unauth {ADDED_SUDO}")).await;
    assert_eq!(reply, format!("User {ADDED_SUDO} is no longer authorized."));
    assert_eq!(h.store().role(ADDED_SUDO).await.unwrap(), None);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sudo_user_from_the_config_cannot_be_demoted() {
    let h = start().await;
    add_sudo(&h, OTHER_SUDO).await;

    let reply = answer(&h, OTHER_SUDO, &format!("/auth {CONFIG_SUDO}")).await;
    assert_eq!(reply, format!("⛔ User {CONFIG_SUDO} is a sudo user: only the owner may /auth a sudo user."));
    assert_eq!(h.store().role(CONFIG_SUDO).await.unwrap(), None);
    assert!(is_served_as_sudo(&h, CONFIG_SUDO).await, "user {CONFIG_SUDO} kept sudo");
    let reply = answer(&h, CONFIG_SUDO, &format!("/auth {OTHER_SUDO}")).await;
    assert_eq!(reply, format!("⛔ User {OTHER_SUDO} is a sudo user: only the owner may /auth a sudo user."));
    assert_eq!(h.store().role(OTHER_SUDO).await.unwrap(), Some(Role::Sudo));

    // Even with the store saying "authorized", the config's word stands: sudo.
    let reply = answer(&h, OWNER, &format!("/auth {CONFIG_SUDO}")).await;
    assert_eq!(reply, format!("User {CONFIG_SUDO} is authorized."));
    assert_eq!(h.store().role(CONFIG_SUDO).await.unwrap(), Some(Role::Authorized));
    assert!(
        is_served_as_sudo(&h, CONFIG_SUDO).await,
        "the config's sudo_users outrank the store's authorized"
    );
    h.shutdown().await;
}

/// A download waits while the disk has less free space than this (far more than any
/// disk here has), so only a force-start moves a task.
const NEVER_FREE: (&str, &str) = ("MLTB_QUEUE_MIN_FREE_DISK", "1024TiB");

/// The state of task `id` in the bot's engine.
fn state_of(h: &Harness, id: i64) -> Option<mltb_store::TaskState> {
    h.bot.engine().tasks().into_iter().find(|v| v.id == id).map(|v| v.state)
}

/// `user`'s answer to `/fs id` (not the status board, which goes to the same chat).
async fn force_start(h: &Harness, user: i64, id: i64) -> String {
    ask(h, user, &format!("/fs {id}"), |t| t.contains("starts now") || t.starts_with("⛔")).await
}

/// Queues a leech of `path` from `USER`; its task id.
async fn queue_leech(h: &Harness, path: &str) -> i64 {
    let queued = ask(h, USER, &format!("/leech {}", h.url(path)), |t| t.contains(" queued")).await;
    let id = queued.trim_start_matches("Task #").split(' ').next().and_then(|n| n.parse().ok());
    id.unwrap_or_else(|| panic!("no task id in {queued:?}"))
}

/// By default a task's own user may `/forcestart` it past the queue, as in the Python bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_own_user_may_force_start_it_by_default() {
    let h = Harness::start(&[NEVER_FREE], &[("/a.bin", 1000)]).await;
    let id = queue_leech(&h, "/a.bin").await;
    assert_eq!(force_start(&h, USER, id).await, format!("Task #{id} starts now."));
    h.until("a.bin uploaded", |_| !h.documents(CHAT).is_empty()).await;
    h.shutdown().await;
}

/// With `queue.force_start_admins_only`, a task's own user may not `/forcestart` it; a
/// sudo user and the owner may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_force_start_for_admins_only_a_user_cannot_step_past_the_queue() {
    let sudo = format!("[{CONFIG_SUDO}]");
    let extra =
        [("MLTB_AUTH_SUDO_USERS", sudo.as_str()), ("MLTB_QUEUE_FORCE_START_ADMINS_ONLY", "true"), NEVER_FREE];
    // Two lengths, so that neither file is the other's bytes.
    let h = Harness::start(&extra, &[("/a.bin", 1000), ("/b.bin", 1001)]).await;
    let (a, b) = (queue_leech(&h, "/a.bin").await, queue_leech(&h, "/b.bin").await);
    let refused = force_start(&h, USER, a).await;
    assert_eq!(
        refused,
        format!(
            "⛔ Only the owner or a sudo user may start task #{a} past the queue (queue.force_start_admins_only)."
        )
    );
    assert_eq!(force_start(&h, CONFIG_SUDO, b).await, format!("Task #{b} starts now."));
    h.until("b.bin uploaded", |_| h.documents(CHAT).contains(&"b.bin".to_owned())).await;
    assert_eq!(state_of(&h, a), Some(mltb_store::TaskState::Queued), "the refused task still waits");
    assert_eq!(h.documents(CHAT), ["b.bin"]);
    assert_eq!(force_start(&h, OWNER, a).await, format!("Task #{a} starts now."));
    h.until("a.bin uploaded", |_| h.documents(CHAT).contains(&"a.bin".to_owned())).await;
    h.shutdown().await;
}
