//! The bot's fixed texts.

/// `/help` for everyone who may use the bot.
pub(super) const HELP: &str = "<b>mltb</b>: send a link, get the files.

/mirror <i>link</i> (/m): download, then copy to the cloud remote
/leech <i>link</i> (/l): download, then upload here
  Reply to a message holding a link or a .torrent file instead of giving a link.
  Flags: <code>-n name</code> rename · <code>-s</code> select torrent files · <code>-sp 500mb</code> split size · <code>-up remote:path</code> mirror destination · <code>-doc</code> / <code>-med</code> leech as document / media · <code>-e [password]</code> extract archives · <code>-z [password]</code> zip
  <code>-b [start:end]</code> in reply to a list of links (one per line, or a .txt file): a task per line · <code>-i 3</code> in reply to a message: it and the next 2 messages, a task each
/status (/s): the live status of this chat's tasks
/cancel <i>id</i>: cancel a task (or reply to its message) · /cancelall: cancel all yours
/forcestart <i>id</i> (/fs): start a queued task now
/usettings (/us): your defaults: split size, leech as document or media, name prefix, mirror destination
/stats: tasks, bandwidth, disk, CPU, memory, uptime
/ping: is the bot there
/help: this";

/// The part of `/help` for the owner and sudo users.
pub(super) const HELP_ADMIN: &str = "

<b>Admin</b>
/auth [<i>id</i>] · /unauth [<i>id</i>]: authorize a chat (negative id, or this chat) or a user (positive id, or the replied user)
/users: who may use the bot
/addsudo <i>id</i> · /rmsudo <i>id</i>: sudo users (owner only)
/log: recent log lines as a file, secrets removed
/restart: restart gracefully; tasks resume

Commands that run shell or code are not offered (see docs/commands.md).";

/// The polite refusal, once per window.
pub(super) const REFUSED: &str =
    "Sorry, this bot is private. Ask its owner to authorize you or this chat (/auth).";
