//! Conformance over raw HTTP: status codes, bodies, headers, encodings, limits, faults.

mod support;

use std::time::Duration;

use bytes::Bytes;
use mltb_telegram_sim::{Fault, MB, Mode, RateLimits, SimConfig};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{base, call, client, content, sha256_hex, start};

const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";
const CONFLICT: &str =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

fn no_limits() -> SimConfig {
    SimConfig::default().rate_limits(None)
}

#[tokio::test]
async fn routing_token_and_method_names() {
    let sim = start(SimConfig::default().token("123456:secret").bot_username("my_bot")).await;
    let http = client();
    let wrong = http.get(format!("{}/bot123456:other/getMe", sim.api_url())).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );

    let unknown = http.get(format!("{}/sendSticker", base(&sim))).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"})
    );

    for name in ["getMe", "GETME", "getme", "GeTmE"] {
        let me: Value =
            http.post(format!("{}/{name}", base(&sim))).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["ok"], true, "{name}");
        assert_eq!(me["result"]["id"], 123456);
        assert_eq!(me["result"]["is_bot"], true);
        assert_eq!(me["result"]["username"], "my_bot");
    }
    // paths outside the API: Telegram's JSON 404
    let stray = http.get(format!("{}/nothing/here/at/all", sim.api_url())).send().await.unwrap();
    assert_eq!(stray.status(), 404);
    assert_eq!(
        stray.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
    sim.add_chat(-1_000_000_000_123);
    let (_, chat) = call(&http, &sim, "getChat", json!({"chat_id": -1_000_000_000_123_i64})).await;
    assert_eq!(chat["result"]["type"], "supergroup");
    // bool methods carry "result": true (webhook methods also a description, as the Bot API's)
    let (status, body) = call(&http, &sim, "deleteWebhook", json!({})).await;
    assert_eq!(
        (status, body),
        (200, json!({"ok": true, "result": true, "description": "Webhook is already deleted"}))
    );
    let stats = sim.stats();
    assert_eq!(stats.by_method["getMe"], 4);
    assert_eq!(stats.by_method["sendsticker"], 1);
    assert_eq!(stats.requests, 7, "the wrong-token request is not counted");
}

#[tokio::test]
async fn every_parameter_encoding_is_understood() {
    let sim = start(no_limits()).await;
    sim.add_chat(5);
    let http = client();
    let markup = json!({"inline_keyboard": [[{"text": "Cancel", "callback_data": "c:1"}]]});
    // query string (GET)
    let r = http.get(format!("{}/sendMessage?chat_id=5&text=via%20query", base(&sim))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // urlencoded
    let r = http
        .post(format!("{}/sendMessage", base(&sim)))
        .form(&[("chat_id", "5"), ("text", "via form"), ("reply_markup", &markup.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // JSON, chat_id as a string
    let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": "5", "text": "via json"})).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["chat"], json!({"id": 5, "type": "private", "first_name": "User 5"}));
    // multipart: non-file fields are strings, reply_markup is JSON text
    let form = Form::new()
        .text("chat_id", "5")
        .text("text", "via multipart")
        .text("reply_markup", markup.to_string());
    let r = http.post(format!("{}/sendMessage", base(&sim))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["reply_markup"], markup);

    let sent = sim.sent();
    let texts: Vec<_> = sent.iter().map(|o| o.text.clone().unwrap()).collect();
    assert_eq!(texts, ["via query", "via form", "via json", "via multipart"]);
    assert_eq!(sent[1].reply_markup.as_ref(), Some(&markup));
    assert_eq!(sent[3].reply_markup.as_ref(), Some(&markup));
    assert_eq!(sent.iter().map(|o| o.message_id.unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(sent.iter().enumerate().all(|(i, o)| o.seq == i as u64 && o.chat_id == 5));
}

#[tokio::test]
async fn chunked_multipart_upload_is_stored_intact() {
    let sim = start(no_limits()).await;
    sim.add_chat(-100);
    let http = client();
    let data = content(300_000);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(7_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    // No length: reqwest sends the body with chunked transfer encoding.
    let part = Part::stream(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .file_name("report.txt")
        .mime_str("text/plain")
        .unwrap();
    let form = Form::new().text("chat_id", "-100").text("caption", "the report").part("document", part);
    let r = http.post(format!("{}/SENDDOCUMENT", base(&sim))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let doc = &body["result"]["document"];
    assert_eq!(doc["file_name"], "report.txt");
    assert_eq!(doc["mime_type"], "text/plain");
    assert_eq!(doc["file_size"], 300_000);
    assert_eq!(body["result"]["caption"], "the report");
    assert_eq!(body["result"]["chat"]["type"], "group");
    let sent = sim.sent();
    let file = sent[0].file.as_ref().unwrap();
    assert_eq!(file.sha256, sha256_hex(&data));
    assert_eq!((file.size, file.name.as_str()), (300_000, "report.txt"));
    assert_eq!(sent[0].method, "sendDocument");
}

#[tokio::test]
async fn validation_uses_telegrams_strings() {
    let sim = start(no_limits()).await;
    sim.add_chat(1);
    let http = client();
    let bad = |d: &str| json!({"ok": false, "error_code": 400, "description": format!("Bad Request: {d}")});
    // a stored file, so that the caption (checked after the file) is what fails below
    let form = Form::new().text("chat_id", "1").part("document", Part::bytes(b"x".to_vec()).file_name("x"));
    let r = http.post(format!("{}/sendDocument", base(&sim))).multipart(form).send().await.unwrap();
    let stored: Value = r.json().await.unwrap();
    let file_id = stored["result"]["document"]["file_id"].as_str().unwrap().to_owned();
    let cases = [
        ("sendMessage", json!({"chat_id": 1, "text": ""}), "message text is empty"),
        ("sendMessage", json!({"chat_id": 1}), "message text is empty"),
        ("sendMessage", json!({"chat_id": 1, "text": "é".repeat(4097)}), "message is too long"),
        ("sendMessage", json!({"text": "x"}), "chat_id is empty"),
        ("sendMessage", json!({"chat_id": "@nobody", "text": "x"}), "chat not found"),
        (
            "sendMessage",
            json!({"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "b", "callback_data": "x".repeat(65)}]]}}),
            "BUTTON_DATA_INVALID",
        ),
        (
            "sendMessage",
            json!({"chat_id": 1, "text": "x", "reply_markup": "{not json"}),
            "can't parse reply keyboard markup JSON object",
        ),
        (
            "sendDocument",
            json!({"chat_id": 1, "document": file_id, "caption": "c".repeat(1025)}),
            "message caption is too long",
        ),
        ("sendDocument", json!({"chat_id": 1}), "there is no document in the request"),
        (
            "sendDocument",
            json!({"chat_id": 1, "document": "unknown-file-id"}),
            "wrong file identifier/HTTP URL specified",
        ),
        (
            "sendDocument",
            json!({"chat_id": 1, "document": "file:///etc/hostname"}),
            "invalid file HTTP URL specified: Unsupported URL protocol",
        ),
        (
            "editMessageText",
            json!({"chat_id": 1, "message_id": 99, "text": "x"}),
            "message to edit not found",
        ),
        ("editMessageText", json!({"chat_id": 1, "text": "x"}), "message to edit not found"),
        ("editMessageText", json!({"text": "x"}), "message identifier is not specified"),
        ("sendMessage", json!({"chat_id": 999, "text": "x"}), "chat not found"),
        ("deleteMessage", json!({"chat_id": 1, "message_id": 99}), "message to delete not found"),
        (
            "answerCallbackQuery",
            json!({"callback_query_id": "123"}),
            "query is too old and response timeout expired or query ID is invalid",
        ),
        ("getFile", json!({"file_id": "nope"}), "invalid file_id"),
        (
            "sendMessage",
            json!({"chat_id": 1, "text": "x", "reply_parameters": {"message_id": 77}}),
            "message to be replied not found",
        ),
        (
            "sendMessage",
            json!({"chat_id": 1, "text": "x", "reply_to_message_id": 77}),
            "message to be replied not found",
        ),
    ];
    for (method, params, description) in cases {
        let (status, body) = call(&http, &sim, method, params.clone()).await;
        assert_eq!((status, body), (400, bad(description)), "{method} {params}");
    }
    // limits are inclusive: 4096 characters (not bytes) pass
    let (status, _) = call(&http, &sim, "sendMessage", json!({"chat_id": 1, "text": "é".repeat(4096)})).await;
    assert_eq!(status, 200);
    // HTML tags do not count towards the limit
    let html = format!("<b>{}</b>", "x".repeat(4096));
    let (status, _) =
        call(&http, &sim, "sendMessage", json!({"chat_id": 1, "text": html, "parse_mode": "HTML"})).await;
    assert_eq!(status, 200);
    let lenient = json!({"chat_id": 1, "text": "x", "reply_parameters": {"message_id": 77, "allow_sending_without_reply": true}});
    let (status, _) = call(&http, &sim, "sendMessage", lenient).await;
    assert_eq!(status, 200);
    assert_eq!(sim.sent().len(), 4, "rejected calls are not logged");
}

#[tokio::test]
async fn edits_not_modified_and_callbacks() {
    let sim = start(no_limits()).await;
    sim.add_chat(9);
    let http = client();
    let kb = |data: &str| json!({"inline_keyboard": [[{"text": "Cancel", "callback_data": data}]]});
    let (_, sent) =
        call(&http, &sim, "sendMessage", json!({"chat_id": 9, "text": "0%", "reply_markup": kb("c:1")}))
            .await;
    let id = sent["result"]["message_id"].as_i64().unwrap();

    let same = json!({"chat_id": 9, "message_id": id, "text": "0%", "reply_markup": kb("c:1")});
    let (status, body) = call(&http, &sim, "editMessageText", same).await;
    assert_eq!((status, body["description"].as_str().unwrap()), (400, NOT_MODIFIED));

    let (status, body) = call(
        &http,
        &sim,
        "editMessageText",
        json!({"chat_id": 9, "message_id": id, "text": "50%", "reply_markup": kb("c:1")}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["text"], "50%");
    assert!(body["result"]["edit_date"].is_u64());
    assert_eq!(body["result"]["reply_markup"], kb("c:1"));

    let (status, body) = call(
        &http,
        &sim,
        "editMessageReplyMarkup",
        json!({"chat_id": 9, "message_id": id, "reply_markup": kb("c:1")}),
    )
    .await;
    assert_eq!((status, body["description"].as_str().unwrap()), (400, NOT_MODIFIED));
    // same text without markup removes the keyboard: a change
    let (status, body) =
        call(&http, &sim, "editMessageText", json!({"chat_id": 9, "message_id": id, "text": "50%"})).await;
    assert_eq!(status, 200);
    assert!(body["result"].get("reply_markup").is_none());
    let state = sim.message(9, id as i32).unwrap();
    assert_eq!(
        (state.text.as_deref(), state.reply_markup.as_ref(), state.edit_count),
        (Some("50%"), None, 2)
    );

    // a user's message cannot be edited by the bot
    sim.send_text(9, 9, "hi");
    let (status, body) =
        call(&http, &sim, "editMessageText", json!({"chat_id": 9, "message_id": id + 1, "text": "x"})).await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (400, "Bad Request: message can't be edited")
    );

    // inline messages answer true
    let (status, body) =
        call(&http, &sim, "editMessageText", json!({"inline_message_id": "abc", "text": "x"})).await;
    assert_eq!((status, body["result"].clone()), (200, json!(true)));

    // callbacks: known ids only, once; text at most 200 characters
    sim.press_button(9, 9, id as i32, "c:1");
    let (_, updates) = call(&http, &sim, "getUpdates", json!({"offset": 0})).await;
    let query =
        updates["result"].as_array().unwrap().iter().find_map(|u| u.get("callback_query")).unwrap().clone();
    assert_eq!(query["data"], "c:1");
    assert_eq!(query["message"]["message_id"], id);
    let qid = query["id"].as_str().unwrap();
    let (status, _) =
        call(&http, &sim, "answerCallbackQuery", json!({"callback_query_id": qid, "text": "x".repeat(201)}))
            .await;
    assert_eq!(status, 400);
    let (status, body) = call(
        &http,
        &sim,
        "answerCallbackQuery",
        json!({"callback_query_id": qid, "text": "Cancelled", "show_alert": true}),
    )
    .await;
    assert_eq!((status, body["result"].clone()), (200, json!(true)));
    let (status, _) = call(&http, &sim, "answerCallbackQuery", json!({"callback_query_id": qid})).await;
    assert_eq!(status, 400, "a query is answered once");
    let answers = sim.callback_answers();
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].text.as_deref(), answers[0].show_alert), (Some("Cancelled"), true));

    // delete
    let (status, _) = call(&http, &sim, "deleteMessage", json!({"chat_id": 9, "message_id": id})).await;
    assert_eq!(status, 200);
    assert!(sim.message(9, id as i32).unwrap().deleted);
    let (status, body) =
        call(&http, &sim, "editMessageText", json!({"chat_id": 9, "message_id": id, "text": "y"})).await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (400, "Bad Request: message to edit not found")
    );
    let methods: Vec<_> = sim.sent().iter().map(|o| o.method.clone()).collect();
    assert_eq!(
        methods,
        ["sendMessage", "editMessageText", "editMessageText", "editMessageText", "deleteMessage"]
    );
}

#[tokio::test]
async fn get_updates_offset_limit_and_allowed_updates() {
    let sim = start(no_limits()).await;
    let http = client();
    let ids: Vec<i64> = (0..5).map(|i| sim.send_text(3, 3, &format!("m{i}"))).collect();
    let u = |body: &Value| {
        body["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["update_id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };

    let (_, body) = call(&http, &sim, "getUpdates", json!({"limit": 2})).await;
    assert_eq!(u(&body), ids[..2]);
    // not confirmed yet: the same again
    let (_, body) = call(&http, &sim, "getUpdates", json!({"limit": 2})).await;
    assert_eq!(u(&body), ids[..2]);
    // offset confirms everything below it
    let (_, body) = call(&http, &sim, "getUpdates", json!({"offset": ids[2]})).await;
    assert_eq!(u(&body), ids[2..]);
    // negative offset reads from the end and forgets the rest
    let (_, body) = call(&http, &sim, "getUpdates", json!({"offset": -1})).await;
    assert_eq!(u(&body), ids[4..]);
    let (_, body) = call(&http, &sim, "getUpdates", json!({})).await;
    assert_eq!(u(&body), ids[4..]);
    // limit is clamped to 1..=100
    let (_, body) = call(&http, &sim, "getUpdates", json!({"limit": 0})).await;
    assert_eq!(u(&body).len(), 1);

    // allowed_updates persists across calls; updates of other types are dropped
    let (_, body) =
        call(&http, &sim, "getUpdates", json!({"offset": ids[4] + 1, "allowed_updates": ["callback_query"]}))
            .await;
    assert_eq!(u(&body), Vec::<i64>::new());
    sim.send_text(3, 3, "ignored");
    let press = sim.press_button(3, 3, 1, "x");
    let (_, body) = call(&http, &sim, "getUpdates", json!({})).await;
    assert_eq!(u(&body), [press]);
    // an empty list resets to every type
    let unknown = sim.inject_raw_update(json!({"update_id": 1, "future_kind": {"x": 1}}));
    let (_, body) =
        call(&http, &sim, "getUpdates", json!({"offset": press + 1, "allowed_updates": []})).await;
    assert_eq!(u(&body), [unknown]);
    assert_eq!(body["result"][0]["future_kind"], json!({"x": 1}));
    // a user's reply embeds the message it answers; the bot can reply to it in turn
    let (_, sent) = call(&http, &sim, "sendMessage", json!({"chat_id": 3, "text": "Send me a name"})).await;
    let asked = sent["result"]["message_id"].as_i64().unwrap();
    let reply = sim.reply_text(3, 3, "new-name.mkv", asked as i32);
    let (_, body) = call(&http, &sim, "getUpdates", json!({"offset": reply})).await;
    let message = &body["result"][0]["message"];
    assert_eq!(message["reply_to_message"]["text"], "Send me a name");
    assert_eq!(message["reply_to_message"]["from"]["is_bot"], true);
    let answer =
        json!({"chat_id": 3, "text": "ok", "reply_parameters": {"message_id": message["message_id"]}});
    let (_, body) = call(&http, &sim, "sendMessage", answer).await;
    assert_eq!(body["result"]["reply_to_message"]["text"], "new-name.mkv");
    // the command entity a client routes on
    let cmd = sim.send_text(3, 3, "/leech https://x");
    let (_, body) = call(&http, &sim, "getUpdates", json!({"offset": cmd})).await;
    assert_eq!(
        body["result"][0]["message"]["entities"],
        json!([{"type": "bot_command", "offset": 0, "length": 6}])
    );
    // webhook set: getUpdates is a conflict
    call(&http, &sim, "setWebhook", json!({"url": "https://example.invalid/hook"})).await;
    let (status, body) = call(&http, &sim, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["description"],
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
    );
}

#[tokio::test]
async fn long_poll_wakes_on_inject_and_older_poll_gets_conflict() {
    // Real time: the client and the sim share sockets, and tokio's paused clock would jump
    // to the next timer whenever the runtime waits on I/O.
    let sim = start(no_limits()).await;
    let http = client();
    let t0 = std::time::Instant::now();
    let url = format!("{}/getUpdates", base(&sim));
    let first = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.post(url).json(&json!({"timeout": 50})).send().await.unwrap() }
    });
    sim.wait_for_poll(Duration::from_secs(20)).await.unwrap();
    let second = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.post(url).json(&json!({"timeout": 50})).send().await.unwrap() }
    });
    let first = first.await.unwrap();
    assert_eq!(first.status(), 409);
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 409, "description": CONFLICT})
    );
    sim.wait_for_poll(Duration::from_secs(20)).await.unwrap();
    let id = sim.send_text(1, 1, "wake up");
    let second: Value = second.await.unwrap().json().await.unwrap();
    assert_eq!(second["result"][0]["update_id"], id);
    assert!(t0.elapsed() < Duration::from_secs(50), "returned on the update, not the timeout");
}

#[tokio::test(start_paused = true)]
async fn long_poll_without_updates_returns_empty_after_timeout() {
    // The sim's deadline is the only timer, so the paused clock jumps straight to it.
    let sim = start(no_limits()).await;
    let http = client();
    let t0 = tokio::time::Instant::now();
    let (status, empty) = call(&http, &sim, "getUpdates", json!({"timeout": 30})).await;
    assert_eq!((status, empty), (200, json!({"ok": true, "result": []})));
    assert!(t0.elapsed() >= Duration::from_secs(30));
    let (_, empty) = call(&http, &sim, "getUpdates", json!({"timeout": 0})).await;
    assert_eq!(empty["result"], json!([]));
    assert!(t0.elapsed() < Duration::from_secs(31), "timeout 0 answers at once");
}

#[tokio::test(start_paused = true)]
async fn rate_limits_answer_429_with_retry_after() {
    let limits = RateLimits { per_chat_burst: 1, ..RateLimits::default() };
    let sim = start(SimConfig::default().rate_limits(Some(limits))).await;
    for chat in [1, -7, 200].into_iter().chain(100..130) {
        sim.add_chat(chat);
    }
    let http = client();
    let send = |chat: i64| {
        let http = http.clone();
        let url = format!("{}/sendMessage", base(&sim));
        async move { http.post(url).json(&json!({"chat_id": chat, "text": "x"})).send().await.unwrap() }
    };
    assert_eq!(send(1).await.status(), 200);
    let limited = send(1).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(
        limited.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}})
    );
    // edits count too
    let (status, _) =
        call(&http, &sim, "editMessageText", json!({"chat_id": 1, "message_id": 1, "text": "y"})).await;
    assert_eq!(status, 429);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(send(1).await.status(), 200);

    // a group: 20 per minute
    sim.set_rate_limits(false);
    for _ in 0..25 {
        assert_eq!(send(-7).await.status(), 200);
    }
    sim.set_rate_limits(true);
    tokio::time::advance(Duration::from_secs(61)).await;
    for i in 0..20 {
        assert_eq!(send(-7).await.status(), 200, "send {i}");
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let limited = send(-7).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "40");

    // globally 30 per second
    tokio::time::advance(Duration::from_secs(61)).await;
    for chat in 100..130 {
        assert_eq!(send(chat).await.status(), 200);
    }
    assert_eq!(send(200).await.status(), 429);

    let stats = sim.stats();
    assert_eq!(stats.responses_429, 4);
    assert_eq!(stats.max_per_chat_in_any_second, 25, "the unlimited burst shows in the figures");
    assert_eq!(stats.max_per_group_in_any_minute, 25);
    assert_eq!(stats.max_global_in_any_second, 30);
    assert_eq!(stats.accepted_sends, 2 + 25 + 20 + 30);
}

#[tokio::test(start_paused = true)]
async fn injected_faults() {
    let sim = start(no_limits()).await;
    let http = client();
    let get_me = || http.get(format!("{}/getMe", base(&sim))).send();

    sim.inject_fault(Fault::ServerError(502), 2);
    for _ in 0..2 {
        let r = get_me().await.unwrap();
        assert_eq!(r.status(), 502);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"ok": false, "error_code": 502, "description": "Bad Gateway"})
        );
    }
    assert_eq!(get_me().await.unwrap().status(), 200);

    sim.inject_fault(Fault::TooManyRequests { retry_after: 7 }, 1);
    let r = get_me().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (429, "7"));

    sim.inject_fault(Fault::DropConnection, 1);
    let err = get_me().await.unwrap_err();
    assert!(!err.is_status() && err.status().is_none(), "no response at all: {err}");
    assert_eq!(get_me().await.unwrap().status(), 200, "the next connection works");

    sim.inject_fault(Fault::Slow(Duration::from_secs(20)), 1);
    let t0 = tokio::time::Instant::now();
    assert_eq!(get_me().await.unwrap().status(), 200);
    assert!(t0.elapsed() >= Duration::from_secs(20));

    // method filter: other methods pass
    sim.inject_fault_for("SendMessage", Fault::ServerError(500), 1);
    assert_eq!(get_me().await.unwrap().status(), 200);
    let (status, _) = call(&http, &sim, "sendMessage", json!({"chat_id": 1, "text": "x"})).await;
    assert_eq!(status, 500);
    assert!(sim.sent().is_empty(), "a faulted call has no effect");

    let stats = sim.stats();
    assert_eq!((stats.responses_5xx, stats.responses_429, stats.dropped_connections), (3, 1, 1));
}

#[tokio::test]
async fn cloud_mode_upload_and_download_limits() {
    let mode = Mode::Cloud { upload_limit: MB, download_limit: MB / 2 };
    let sim = start(no_limits().mode(mode)).await;
    sim.add_chat(1);
    sim.add_chat(2);
    let http = client();
    let url = format!("{}/sendDocument", base(&sim));

    // streamed (chunked): refused once the part passes the limit
    let big = content(2 * MB as usize);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let part =
        Part::stream(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))).file_name("big.bin");
    let r = http
        .post(&url)
        .multipart(Form::new().text("chat_id", "1").part("document", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 413, "description": "Request Entity Too Large"})
    );
    // with a Content-Length over the limit
    let part = Part::bytes(content(3 * MB as usize)).file_name("big.bin");
    let r = http
        .post(&url)
        .multipart(Form::new().text("chat_id", "1").part("document", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(sim.sent().is_empty());
    let leftovers = std::fs::read_dir(sim.files_dir().join("uploads")).unwrap().count();
    assert_eq!(leftovers, 0, "refused uploads leave no files");

    // exactly the limit passes; getFile refuses it above the download limit
    let exact = content(MB as usize);
    let part = Part::bytes(exact.clone()).file_name("exact.bin");
    let r = http
        .post(&url)
        .multipart(Form::new().text("chat_id", "1").part("document", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let big_id = body["result"]["document"]["file_id"].as_str().unwrap().to_owned();
    let (status, body) = call(&http, &sim, "getFile", json!({"file_id": big_id})).await;
    assert_eq!((status, body["description"].as_str().unwrap()), (400, "Bad Request: file is too big"));

    // a small one downloads intact from the relative file_path
    let small = content(100_000);
    let part = Part::bytes(small.clone()).file_name("small.bin");
    let r = http
        .post(&url)
        .multipart(Form::new().text("chat_id", "1").part("document", part))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let id = body["result"]["document"]["file_id"].as_str().unwrap().to_owned();
    let (status, file) = call(&http, &sim, "getFile", json!({"file_id": id})).await;
    assert_eq!(status, 200);
    let path = file["result"]["file_path"].as_str().unwrap();
    assert!(!path.starts_with('/'), "{path}");
    assert_eq!(file["result"]["file_size"], 100_000);
    let bytes = http.get(format!("{}/file/bot{}/{path}", sim.api_url(), sim.token())).send().await.unwrap();
    assert_eq!(bytes.status(), 200);
    assert_eq!(sha256_hex(&bytes.bytes().await.unwrap()), sha256_hex(&small));
    let wrong = http.get(format!("{}/file/bot1:x/{path}", sim.api_url())).send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    // file_id reuse, and a user's document is reusable too
    let (status, body) = call(&http, &sim, "sendDocument", json!({"chat_id": 2, "document": id})).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["document"]["file_id"], id.as_str());
    let sent = sim.sent();
    assert_eq!(sent.last().unwrap().file.as_ref().unwrap().sha256, sha256_hex(&small));
    let upd = sim.send_document(4, 4, "notes.txt", b"hello".to_vec(), Some("mine"));
    let (_, updates) = call(&http, &sim, "getUpdates", json!({"offset": upd})).await;
    let doc = &updates["result"][0]["message"]["document"];
    assert_eq!(doc["file_name"], "notes.txt");
    assert_eq!(updates["result"][0]["message"]["caption"], "mine");
    let (status, file) = call(&http, &sim, "getFile", json!({"file_id": doc["file_id"]})).await;
    assert_eq!(status, 200);
    let path = file["result"]["file_path"].as_str().unwrap();
    let bytes = http.get(format!("{}/file/bot{}/{path}", sim.api_url(), sim.token())).send().await.unwrap();
    assert_eq!(&bytes.bytes().await.unwrap()[..], b"hello");
}

#[tokio::test]
async fn local_mode_takes_absolute_paths() {
    let sim = start(no_limits().mode(Mode::local())).await;
    sim.add_chat(1);
    let http = client();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("movie.mkv");
    let data = content(200_000);
    std::fs::write(&path, &data).unwrap();
    let (status, body) = call(
        &http,
        &sim,
        "sendVideo",
        json!({"chat_id": 1, "video": format!("file://{}", path.display()), "width": 640, "height": 360, "duration": 5}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let video = &body["result"]["video"];
    assert_eq!((video["width"].clone(), video["duration"].clone()), (json!(640), json!(5)));
    assert_eq!(video["mime_type"], "video/x-matroska");
    assert_eq!(sim.sent()[0].file.as_ref().unwrap().sha256, sha256_hex(&data));
    let (_, file) = call(&http, &sim, "getFile", json!({"file_id": video["file_id"]})).await;
    assert_eq!(file["result"]["file_path"], path.display().to_string());

    for bad in
        ["file://relative/movie.mkv".to_owned(), format!("file://{}/missing.bin", dir.path().display())]
    {
        let (status, body) = call(&http, &sim, "sendDocument", json!({"chat_id": 1, "document": bad})).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // uploads get an absolute file_path too
    let part = Part::bytes(b"abc".to_vec()).file_name("a.txt");
    let r = http
        .post(format!("{}/sendDocument", base(&sim)))
        .multipart(Form::new().text("chat_id", "1").part("document", part))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let (_, file) =
        call(&http, &sim, "getFile", json!({"file_id": body["result"]["document"]["file_id"]})).await;
    let stored = file["result"]["file_path"].as_str().unwrap();
    assert!(stored.starts_with('/'));
    assert_eq!(std::fs::read(stored).unwrap(), b"abc");
}

#[tokio::test]
async fn media_group_with_attachments() {
    let sim = start(SimConfig::default()).await;
    sim.add_chat(11);
    let http = client();
    let media = json!([
        {"type": "document", "media": "attach://a", "caption": "part 1"},
        {"type": "document", "media": "attach://b"},
    ]);
    let form = Form::new()
        .text("chat_id", "11")
        .text("media", media.to_string())
        .part("a", Part::bytes(b"first".to_vec()).file_name("f.001"))
        .part("b", Part::bytes(b"second".to_vec()).file_name("f.002"));
    let r = http.post(format!("{}/sendMediaGroup", base(&sim))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let messages = body["result"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["media_group_id"], messages[1]["media_group_id"]);
    assert_eq!(messages[0]["caption"], "part 1");
    assert_eq!(messages[1]["document"]["file_name"], "f.002");
    let sent = sim.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].file.as_ref().unwrap().sha256, sha256_hex(b"second"));
    let (status, _) = call(&http, &sim, "sendMediaGroup", json!({"chat_id": 11, "media": [media[0]]})).await;
    assert_eq!(status, 400, "an album needs 2-10 items");
    assert_eq!(sim.stats().accepted_sends, 1, "an album counts once against the limits");

    // a photo answers with a PhotoSize array
    let form =
        Form::new().text("chat_id", "11").part("photo", Part::bytes(b"\x89PNG".to_vec()).file_name("p.png"));
    let r = http.post(format!("{}/sendPhoto", base(&sim))).multipart(form).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    let sizes = body["result"]["photo"].as_array().unwrap();
    assert_eq!(sizes[0]["file_size"], 4);
    assert!(sizes[0]["file_id"].as_str().unwrap().starts_with("AgAC"));
    assert_eq!(sim.sent().last().unwrap().file.as_ref().unwrap().mime.as_deref(), Some("image/png"));
    sim.set_rate_limits(false);

    // captions are edited like texts
    let id = messages[0]["message_id"].as_i64().unwrap();
    let edit = json!({"chat_id": 11, "message_id": id, "caption": "part 1"});
    let (status, body) = call(&http, &sim, "editMessageCaption", edit).await;
    assert_eq!((status, body["description"].as_str().unwrap()), (400, NOT_MODIFIED));
    let edit = json!({"chat_id": 11, "message_id": id, "caption": "part 1 of 2"});
    let (status, body) = call(&http, &sim, "editMessageCaption", edit).await;
    assert_eq!((status, body["result"]["caption"].clone()), (200, json!("part 1 of 2")));
    assert_eq!(sim.message(11, id as i32).unwrap().caption.as_deref(), Some("part 1 of 2"));
    let (status, body) =
        call(&http, &sim, "editMessageText", json!({"chat_id": 11, "message_id": id, "text": "t"})).await;
    assert_eq!(
        (status, body["description"].as_str().unwrap()),
        (400, "Bad Request: there is no text in the message to edit")
    );
}

#[tokio::test]
async fn control_api_drives_the_same_state() {
    let sim = start(no_limits()).await;
    let http = client();
    let ctl = |path: &str| format!("{}/_sim/{path}", sim.api_url());
    let r: Value = http
        .post(ctl("text"))
        .json(&json!({"chat_id": 5, "from": 5, "text": "/status"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["update_id"].as_i64().unwrap();
    let r: Value = http
        .post(ctl("document?chat_id=5&from=5&file_name=x.torrent"))
        .body(b"d8:announce".to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["update_id"], id + 1);
    let (_, updates) = call(&http, &sim, "getUpdates", json!({})).await;
    assert_eq!(updates["result"][0]["message"]["text"], "/status");
    assert_eq!(updates["result"][1]["message"]["document"]["file_size"], 11);

    let r = http
        .post(ctl("fault"))
        .json(&json!({"kind": "server_error", "status": 503, "count": 1, "method": "sendMessage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http.post(ctl("fault")).json(&json!({"kind": "meteor"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown fault kind \\\"meteor\\\""));
    let (status, _) = call(&http, &sim, "sendMessage", json!({"chat_id": 5, "text": "a"})).await;
    assert_eq!(status, 503);
    let (_, sent) = call(&http, &sim, "sendMessage", json!({"chat_id": 5, "text": "b"})).await;
    let mid = sent["result"]["message_id"].as_i64().unwrap();

    let log: Value = http.get(ctl("sent")).send().await.unwrap().json().await.unwrap();
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["text"], "b");
    assert_eq!(log[0]["method"], "sendMessage");
    let msg: Value = http.get(ctl(&format!("message/5/{mid}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!((msg["text"].clone(), msg["from_bot"].clone()), (json!("b"), json!(true)));
    assert_eq!(http.get(ctl("message/5/999")).send().await.unwrap().status(), 404);

    let r: Value = http
        .post(ctl("callback"))
        .json(&json!({"chat_id": 5, "from": 5, "message_id": mid, "data": "c:x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, updates) = call(&http, &sim, "getUpdates", json!({"offset": r["update_id"]})).await;
    let qid = updates["result"][0]["callback_query"]["id"].clone();
    call(&http, &sim, "answerCallbackQuery", json!({"callback_query_id": qid, "text": "ok"})).await;
    let answers: Value = http.get(ctl("callback_answers")).send().await.unwrap().json().await.unwrap();
    assert_eq!(answers[0]["text"], "ok");

    http.post(ctl("update")).json(&json!({"brand_new": {}})).send().await.unwrap();
    let bad = http.post(ctl("update")).json(&json!([1])).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    http.post(ctl("rate_limits")).json(&json!({"enabled": true})).send().await.unwrap();

    // a user who blocked the bot
    http.post(ctl("blocked")).json(&json!({"chat_id": 6, "blocked": true})).send().await.unwrap();
    let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": 6, "text": "hi"})).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})
        )
    );
    sim.set_blocked(6, false);
    let (status, _) = call(&http, &sim, "sendMessage", json!({"chat_id": 6, "text": "hi"})).await;
    assert_eq!(status, 200);

    // waiting on the log: answered once it is long enough, 408 when it is not in time
    let log: Value =
        http.get(ctl("sent?wait_for=2&timeout_ms=5000")).send().await.unwrap().json().await.unwrap();
    assert_eq!(log[1]["text"], "hi");
    let idle = http.get(ctl("wait_poll?timeout_ms=50")).send().await.unwrap();
    assert_eq!(idle.status(), 408, "nobody is polling");
    let poll = tokio::spawn({
        let (http, url) = (http.clone(), format!("{}/getUpdates", base(&sim)));
        async move {
            http.post(url).json(&json!({"timeout": 5, "offset": 1_000_000})).send().await.unwrap().status()
        }
    });
    let held = http.get(ctl("wait_poll?timeout_ms=5000")).send().await.unwrap();
    assert_eq!(held.status(), 200);
    sim.send_text(5, 5, "wake");
    assert_eq!(poll.await.unwrap(), 200);
    let late = http.get(ctl("sent?wait_for=9&timeout_ms=50")).send().await.unwrap();
    assert_eq!(late.status(), 408);
    assert!(late.text().await.unwrap().contains("9 outbound messages (got 2)"));
    let stats: Value = http.get(ctl("stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["responses_5xx"], 1);
    assert_eq!(stats["by_method"]["sendMessage"], 4);
}

#[tokio::test]
async fn shutdown_closes_pending_polls() {
    let sim = start(no_limits()).await;
    let http = client();
    let poll = tokio::spawn({
        let url = format!("{}/getUpdates", base(&sim));
        async move { http.post(url).json(&json!({"timeout": 600})).send().await }
    });
    sim.wait_for_poll(Duration::from_secs(10)).await.unwrap();
    sim.shutdown().await;
    assert!(poll.await.unwrap().is_err(), "the poll's connection is closed");
    assert!(reqwest::get(format!("{}/getMe", base(&sim))).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn binary_serves_until_interrupted() {
    use tokio::io::AsyncBufReadExt;
    // our own files dir: the child is killed, so it cannot remove a temporary one
    let files = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mltb-telegram-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            "42:bin",
            "--no-rate-limits",
            "--max-files",
            "1",
            "--files-dir",
        ])
        .arg(files.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line =
        tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
    let (url, token) = line.split_once(' ').unwrap();
    assert_eq!(token, "42:bin");
    let me: Value = reqwest::get(format!("{url}/bot{token}/getMe")).await.unwrap().json().await.unwrap();
    assert_eq!(me["result"]["id"], 42);
    let doc = reqwest::Client::new()
        .post(format!("{url}/_sim/document?chat_id=1&from=1&file_name=a.txt"))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    assert!(files.path().join("documents").read_dir().unwrap().count() == 1, "stored in --files-dir");
    let doc = reqwest::Client::new()
        .post(format!("{url}/_sim/document?chat_id=1&from=1&file_name=b.txt"))
        .body("def")
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    assert_eq!(files.path().join("documents").read_dir().unwrap().count(), 1, "--max-files 1 keeps one");
    child.kill().await.unwrap();
}
