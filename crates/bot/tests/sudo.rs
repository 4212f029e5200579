//! Only the owner changes a sudo user's standing: a sudo user's `/auth` or `/unauth` of
//! another sudo user (from `/addsudo` or the config's `auth.sudo_users`) is refused, and
//! a sudo user from the config stays sudo whatever the store says. Against the whole bot
//! (simulator, real aria2c, SQLite).

mod support;

use mltb_store::Role;
use support::{Harness, OWNER};

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
