"""python-telegram-bot against mltb-telegram-sim: a second, independent client.

Usage: smoke.py API_URL TOKEN

Every answer the simulator gives goes through python-telegram-bot's own decoding
(`de_json` of User, ChatFullInfo, Message, MessageEntity, CallbackQuery, Document, File,
WebhookInfo...), which raises when a required field is missing or malformed. Any failure,
of the simulator's answer or of an expectation below, exits non-zero with the check's name.
Users are played through the simulator's control API under /_sim/.
"""

import asyncio
import json
import sys
import traceback
import urllib.error
import urllib.request
from datetime import timedelta

from telegram import (
    Bot,
    BotCommand,
    ChatFullInfo,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    MessageEntity,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, RetryAfter
from telegram.request import HTTPXRequest

USER = 4242
GROUP = -1001000004242


class Sim:
    """The simulator's control API (plain HTTP, standard library only)."""

    def __init__(self, api_url: str):
        self.api_url = api_url.rstrip("/")

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.api_url}/_sim/{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def post(self, path: str, body):
        status, answer = self.call("POST", path, body)
        if status != 200:
            raise AssertionError(f"control API {path} answered {status}: {answer}")
        return answer

    def get(self, path: str):
        status, answer = self.call("GET", path)
        if status != 200:
            raise AssertionError(f"control API {path} answered {status}: {answer}")
        return answer


def expect(condition: bool, what: str):
    if not condition:
        raise AssertionError(what)


async def expect_bad_request(coro, fragment: str):
    try:
        await coro
    except BadRequest as err:
        expect(fragment.lower() in err.message.lower(), f"BadRequest {err.message!r} lacks {fragment!r}")
        return
    raise AssertionError(f"expected BadRequest with {fragment!r}, the call succeeded")


async def run(api_url: str, token: str) -> int:
    sim = Sim(api_url)
    bot = Bot(
        token,
        base_url=f"{api_url}/bot",
        base_file_url=f"{api_url}/file/bot",
        request=HTTPXRequest(connect_timeout=10, read_timeout=30),
        get_updates_request=HTTPXRequest(connect_timeout=10, read_timeout=30),
    )
    state = {}
    passed = 0

    async def get_me():
        me = await bot.get_me()
        expect(me.is_bot and me.username, f"getMe: {me}")
        expect(me.can_join_groups is not None and me.supports_inline_queries is not None, f"getMe fields: {me}")

    async def unknown_chat():
        await expect_bad_request(bot.send_message(USER, "hello"), "chat not found")
        sim.post("chat", {"chat_id": USER})
        sim.post("chat", {"chat_id": GROUP, "type": "supergroup", "title": "Mirror group"})

    async def get_chat():
        chat = await bot.get_chat(GROUP)
        expect(isinstance(chat, ChatFullInfo), f"getChat returned {type(chat)}")
        expect(chat.type == "supergroup" and chat.title == "Mirror group", f"getChat: {chat}")
        expect(chat.max_reaction_count is not None and chat.accepted_gift_types is not None, f"{chat}")
        private = await bot.get_chat(USER)
        expect(private.type == "private", f"getChat private: {private}")

    async def send_html_with_keyboard():
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data="cancel:1")]])
        msg = await bot.send_message(
            USER, "😀 <b>Downloading</b> 0% &lt;file&gt;", parse_mode=ParseMode.HTML, reply_markup=keyboard
        )
        expect(msg.text == "😀 Downloading 0% <file>", f"text: {msg.text!r}")
        expect(len(msg.entities) == 1, f"entities: {msg.entities}")
        bold = msg.entities[0]
        expect(bold.type == MessageEntity.BOLD and (bold.offset, bold.length) == (3, 11), f"entity: {bold}")
        expect(msg.parse_entity(bold) == "Downloading", f"entity text: {msg.parse_entity(bold)!r}")
        expect(msg.reply_markup.inline_keyboard[0][0].callback_data == "cancel:1", f"{msg.reply_markup}")
        state["status"] = msg
        await expect_bad_request(
            bot.send_message(USER, "<b>unclosed", parse_mode=ParseMode.HTML),
            "can't find end tag corresponding to start tag",
        )

    async def edit():
        msg = state["status"]
        keyboard = msg.reply_markup
        edited = await bot.edit_message_text(
            "😀 <b>Downloading</b> 50%", chat_id=USER, message_id=msg.message_id,
            parse_mode=ParseMode.HTML, reply_markup=keyboard,
        )
        expect(edited.text == "😀 Downloading 50%" and edited.edit_date is not None, f"edited: {edited}")
        await expect_bad_request(
            bot.edit_message_text(
                "😀 <strong>Downloading</strong> 50%", chat_id=USER, message_id=msg.message_id,
                parse_mode=ParseMode.HTML, reply_markup=keyboard,
            ),
            "message is not modified",
        )

    async def callback_query():
        msg = state["status"]
        pressed = sim.post("callback", {"chat_id": USER, "from": USER, "message_id": msg.message_id, "data": "cancel:1"})
        updates = await bot.get_updates(offset=pressed["update_id"], timeout=5, allowed_updates=["message", "callback_query"])
        expect(len(updates) == 1 and updates[0].callback_query is not None, f"updates: {updates}")
        query = updates[0].callback_query
        expect(query.data == "cancel:1" and query.from_user.id == USER, f"query: {query}")
        expect(query.message.message_id == msg.message_id, f"query message: {query.message}")
        expect(await bot.answer_callback_query(query.id, text="Cancelled"), "answerCallbackQuery")
        answers = sim.get("callback_answers")
        expect(answers[-1]["text"] == "Cancelled", f"answers: {answers}")
        state["offset"] = updates[-1].update_id + 1

    async def long_poll():
        poll = asyncio.create_task(bot.get_updates(offset=state["offset"], timeout=20))
        waited = await asyncio.to_thread(sim.get, "wait_poll?timeout_ms=10000")
        expect(waited.get("ok") is True, f"no getUpdates was held open: {waited}")
        injected = await asyncio.to_thread(sim.post, "text", {"chat_id": USER, "from": USER, "text": "/status"})
        updates = await asyncio.wait_for(poll, 30)
        expect([u.update_id for u in updates] == [injected["update_id"]], f"updates: {updates}")
        message = updates[0].message
        expect(message.text == "/status" and message.chat.id == USER, f"message: {message}")
        expect(message.entities[0].type == MessageEntity.BOT_COMMAND, f"entities: {message.entities}")
        state["offset"] = updates[-1].update_id + 1

    async def upload_and_download():
        data = bytes(range(256)) * 512
        doc = await bot.send_document(
            GROUP, InputFile(data, filename="part.001"), caption="<i>part 1</i>", parse_mode=ParseMode.HTML
        )
        expect(doc.document.file_name == "part.001" and doc.document.file_size == len(data), f"{doc.document}")
        expect(doc.caption == "part 1" and doc.caption_entities[0].type == MessageEntity.ITALIC, f"{doc}")
        file = await bot.get_file(doc.document.file_id)
        expect(file.file_size == len(data), f"getFile: {file}")
        downloaded = await file.download_as_bytearray()
        expect(bytes(downloaded) == data, f"downloaded {len(downloaded)} bytes, expected {len(data)}")
        again = await bot.send_document(USER, doc.document.file_id)
        expect(again.document.file_unique_id == doc.document.file_unique_id, "file_id reuse")
        album = await bot.send_media_group(
            GROUP,
            [InputMediaDocument(b"a", filename="a.txt"), InputMediaDocument(b"b", filename="b.txt")],
        )
        expect(len(album) == 2 and album[0].media_group_id == album[1].media_group_id, f"album: {album}")

    async def small_methods():
        expect(await bot.send_chat_action(USER, ChatAction.TYPING), "sendChatAction")
        expect(await bot.set_my_commands([BotCommand("status", "Show the tasks")]), "setMyCommands")
        commands = await bot.get_my_commands()
        expect([c.command for c in commands] == ["status"], f"commands: {commands}")
        info = await bot.get_webhook_info()
        expect(info.url == "", f"webhook: {info}")
        expect(await bot.delete_webhook(), "deleteWebhook")
        expect(await bot.delete_message(USER, state["status"].message_id), "deleteMessage")

    async def flood_control():
        sim.post("fault", {"kind": "too_many_requests", "retry_after": 2, "count": 1, "method": "sendMessage"})
        try:
            await bot.send_message(USER, "x")
        except RetryAfter as err:
            seconds = err.retry_after.total_seconds() if isinstance(err.retry_after, timedelta) else err.retry_after
            expect(seconds == 2, f"retry_after: {err.retry_after}")
        else:
            raise AssertionError("expected RetryAfter")

    checks = [
        get_me, unknown_chat, get_chat, send_html_with_keyboard, edit, callback_query,
        long_poll, upload_and_download, small_methods, flood_control,
    ]
    async with bot:
        for check in checks:
            try:
                await check()
            except Exception:  # noqa: BLE001 - any failure, the simulator's or ours, fails the run
                print(f"FAIL {check.__name__}:", file=sys.stderr)
                traceback.print_exc()
                print(f"ptb-smoke: {passed} passed, 1 failed")
                return 1
            print(f"ok   {check.__name__}")
            passed += 1
    print(f"ptb-smoke: {passed} passed, 0 failed")
    return 0


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: smoke.py API_URL TOKEN", file=sys.stderr)
        return 2
    return asyncio.run(run(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
