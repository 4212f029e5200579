//! Requests read as the official server reads them: known chats, malformed and mistyped
//! parameters, the order of the checks, the HTTP layer's 413 and 501, and the smaller
//! behaviours of getMe, getChat, sendChatAction and the long poll.

mod support;

use std::time::Duration;

use mltb_telegram_sim::{ChatKind, SimChat, SimConfig};
use reqwest::Method;
use serde_json::{Value, json};
use support::{base, call, call_raw, client, start};

fn description(body: &Value) -> String {
    body["description"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn only_known_chats_exist() {
    let sim = start(SimConfig::default().rate_limits(None)).await;
    let http = client();
    let not_found = (400, "Bad Request: chat not found".to_owned());
    let cases = [
        ("sendMessage", json!({"chat_id": 77, "text": "x"})),
        ("getChat", json!({"chat_id": 77})),
        ("sendChatAction", json!({"chat_id": 77, "action": "typing"})),
        ("editMessageText", json!({"chat_id": 77, "message_id": 1, "text": "x"})),
        ("deleteMessage", json!({"chat_id": 77, "message_id": 1})),
        ("sendDocument", json!({"chat_id": 77, "document": "some-file-id"})),
        ("sendMessage", json!({"chat_id": "@somebody", "text": "x"})),
        ("sendMessage", json!({"chat_id": "seventy-seven", "text": "x"})),
    ];
    for (method, params) in &cases {
        let (status, body) = call(&http, &sim, method, params.clone()).await;
        assert_eq!((status, description(&body)), not_found, "{method} {params}");
    }
    // a chat becomes known when registered, or when a simulated user writes in it
    sim.add_chat(77);
    let (status, _) = call(&http, &sim, "sendMessage", json!({"chat_id": 77, "text": "x"})).await;
    assert_eq!(status, 200);
    sim.send_text(-5, 9, "hello bot");
    let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": -5, "text": "hi group"})).await;
    assert_eq!((status, body["result"]["chat"]["type"].clone()), (200, json!("group")));
    // the user of a group is not a known private chat
    let (status, _) = call(&http, &sim, "sendMessage", json!({"chat_id": 9, "text": "x"})).await;
    assert_eq!(status, 400);
    // td reads the id with to_integer: leading digits count
    let (status, _) = call(&http, &sim, "sendMessage", json!({"chat_id": "77abc", "text": "x"})).await;
    assert_eq!(status, 200);

    // registration through the control API, with a type, a title and a username
    let ctl = format!("{}/_sim/chat", sim.api_url());
    let r = http
        .post(&ctl)
        .json(&json!({"chat_id": -1_001_234_567_890_i64, "type": "channel", "title": "Releases", "username": "rel"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": "@REL", "text": "v1"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["chat"],
        json!({"id": -1_001_234_567_890_i64, "type": "channel", "title": "Releases", "username": "rel"})
    );
    let r = http.post(&ctl).json(&json!({"chat_id": 1, "type": "forum"})).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // a user who blocked the bot: 403 after every other check passed
    sim.set_blocked(31, true);
    let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": 31, "text": "x"})).await;
    assert_eq!((status, description(&body)), (403, "Forbidden: bot was blocked by the user".to_owned()));
    let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": 31, "text": ""})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message text is empty".to_owned()));
}

#[tokio::test]
async fn get_chat_is_chat_full_info_and_get_me_has_the_bot_fields() {
    let sim = start(SimConfig::default()).await;
    sim.add_chat(SimChat::supergroup(-1_000_000_000_042, "Mirror").username("mirror"));
    sim.add_chat(6);
    let http = client();
    for chat in [json!(6), json!(-1_000_000_000_042_i64), json!("@mirror")] {
        let (status, body) = call(&http, &sim, "getChat", json!({ "chat_id": chat })).await;
        assert_eq!(status, 200, "{body}");
        let info = &body["result"];
        for field in ["id", "type", "accent_color_id", "max_reaction_count", "accepted_gift_types"] {
            assert!(info.get(field).is_some(), "{field} missing in {info}");
        }
    }
    let (_, body) = call(&http, &sim, "getChat", json!({"chat_id": -1_000_000_000_042_i64})).await;
    assert_eq!(
        (body["result"]["title"].clone(), body["result"]["type"].clone()),
        (json!("Mirror"), json!("supergroup"))
    );
    assert!(body["result"]["permissions"].is_object());
    let (_, me) = call(&http, &sim, "getMe", json!({})).await;
    for field in [
        "can_join_groups",
        "can_read_all_group_messages",
        "supports_inline_queries",
        "can_connect_to_business",
        "has_main_web_app",
        "has_topics_enabled",
        "allows_users_to_create_topics",
    ] {
        assert!(me["result"][field].is_boolean(), "{field} missing in {me}");
    }
    assert_eq!(SimChat::from(5).kind, ChatKind::Private);
}

#[tokio::test]
async fn chat_actions_are_checked_before_the_chat() {
    let sim = start(SimConfig::default()).await;
    sim.add_chat(4);
    let http = client();
    for action in
        ["typing", "UPLOAD_DOCUMENT", "record_voice", "upload_video_note", "find_location", "cancel"]
    {
        let (status, body) =
            call(&http, &sim, "sendChatAction", json!({"chat_id": 4, "action": action})).await;
        assert_eq!((status, body["result"].clone()), (200, json!(true)), "{action}");
    }
    let wrong = (400, "Bad Request: wrong parameter action in request".to_owned());
    for params in
        [json!({"chat_id": 4, "action": "dancing"}), json!({"chat_id": 999, "action": "x"}), json!({})]
    {
        let (status, body) = call(&http, &sim, "sendChatAction", params.clone()).await;
        assert_eq!((status, description(&body)), wrong, "{params}");
    }
}

#[tokio::test]
async fn missing_parameters_are_reported_in_the_servers_order() {
    let sim = start(SimConfig::default()).await;
    let http = client();
    let cases = [
        ("sendMessage", json!({}), "message text is empty"),
        ("sendMessage", json!({"text": "x"}), "chat_id is empty"),
        (
            "sendMessage",
            json!({"text": "x", "reply_markup": "{"}),
            "can't parse reply keyboard markup JSON object",
        ),
        ("sendDocument", json!({}), "there is no document in the request"),
        (
            "sendDocument",
            json!({"document": "x", "caption": "<b", "parse_mode": "HTML"}),
            "can't parse entities: Unclosed start tag at byte offset 0",
        ),
        ("sendDocument", json!({"document": "x"}), "chat_id is empty"),
        ("sendVideo", json!({"chat_id": 1}), "there is no video in the request"),
        ("sendDocument", json!({"document": "attach://part"}), "there is no document in the request"),
        ("editMessageText", json!({}), "message text is empty"),
        ("editMessageText", json!({"text": "x"}), "message identifier is not specified"),
        ("editMessageReplyMarkup", json!({}), "message identifier is not specified"),
        ("deleteMessage", json!({}), "chat identifier is not specified"),
        ("deleteMessage", json!({"chat_id": 1}), "message identifier is not specified"),
        ("getFile", json!({}), "file_id not specified"),
        ("getChat", json!({}), "chat_id is empty"),
        (
            "answerCallbackQuery",
            json!({}),
            "query is too old and response timeout expired or query ID is invalid",
        ),
        ("sendMediaGroup", json!({"chat_id": 1}), "can't parse media JSON object"),
        ("sendMediaGroup", json!({"media": "{}"}), "expected an Array of InputMedia"),
        (
            "sendMediaGroup",
            json!({"media": [{"type": "document"}]}),
            "can't parse InputMedia: media not found",
        ),
        ("setMyCommands", json!({}), "can't parse commands JSON object"),
    ];
    for (method, params, expected) in cases {
        let (status, body) = call(&http, &sim, method, params.clone()).await;
        assert_eq!(
            (status, description(&body)),
            (400, format!("Bad Request: {expected}")),
            "{method} {params}"
        );
    }
}

#[tokio::test]
async fn malformed_and_mistyped_parameters_read_like_td() {
    let sim = start(SimConfig::default().rate_limits(None)).await;
    sim.add_chat(5);
    let http = client();
    let json_body =
        |body: &'static str| call_raw(&http, &sim, Method::POST, "sendMessage", "application/json", body);
    // a body cut short: what came before the fault is read, the rest ignored
    let (status, _, body) = json_body(r#"{"chat_id": 5, "text": "kept", "reply_markup": {"inline_k"#).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["result"]["text"].clone()), (200, json!("kept")));
    assert!(body["result"].get("reply_markup").is_none());
    // not JSON at all: no parameters, so the first missing one is reported
    let (status, _, body) = json_body("{chat_id: 5}").await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, description(&body)), (400, "Bad Request: message text is empty".to_owned()));
    let (_, _, body) = json_body("[1, 2]").await;
    assert_eq!(description(&serde_json::from_slice(&body).unwrap()), "Bad Request: message text is empty");

    // wrong types: everything is a string to the Bot API
    let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": 5, "text": 12.5})).await;
    assert_eq!((status, body["result"]["text"].clone()), (200, json!("12.5")));
    for chat in [json!(true), json!({"id": 5}), json!([5]), json!(null)] {
        let (status, body) = call(&http, &sim, "sendMessage", json!({"chat_id": chat, "text": "x"})).await;
        assert_eq!((status, description(&body)), (400, "Bad Request: chat not found".to_owned()), "{chat}");
    }
    let (status, body) =
        call(&http, &sim, "editMessageText", json!({"chat_id": 5, "message_id": "first", "text": "x"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message to edit not found".to_owned()));
    let (status, body) =
        call(&http, &sim, "sendMessage", json!({"chat_id": 5, "text": "x", "reply_markup": null})).await;
    assert_eq!(
        (status, description(&body)),
        (400, "Bad Request: object expected as reply markup".to_owned())
    );
    let (status, body) =
        call(&http, &sim, "sendMessage", json!({"chat_id": 5, "text": "x", "disable_notification": "maybe"}))
            .await;
    assert_eq!(status, 200, "an unreadable boolean is false: {body}");
    // integers: limit "abc" is 0, clamped to 1; a huge timeout is clamped to 50
    for n in 0..3 {
        sim.send_text(5, 5, &format!("m{n}"));
    }
    let (status, body) = call(&http, &sim, "getUpdates", json!({"limit": "abc"})).await;
    assert_eq!((status, body["result"].as_array().unwrap().len()), (200, 1));

    // the query string comes first: its value wins over the body's
    let url = format!("{}/sendMessage?text=from%20query", base(&sim));
    let r = http.post(url).json(&json!({"chat_id": 5, "text": "from body"})).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["text"], "from query");
    // urlencoded with a malformed escape keeps it as text
    let (_, _, body) = call_raw(
        &http,
        &sim,
        Method::POST,
        "sendMessage",
        "application/x-www-form-urlencoded",
        "chat_id=5&text=100%25+sure+%zz",
    )
    .await;
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["result"]["text"], "100% sure %zz");
}

#[tokio::test]
async fn the_http_layer_answers_413_and_501_without_a_body() {
    let sim = start(SimConfig::default()).await;
    sim.add_chat(5);
    let http = client();
    // more than 1 MiB of parameters
    let big = json!({"chat_id": 5, "text": "x", "padding": "p".repeat(1 << 20)}).to_string();
    let (status, headers, body) =
        call_raw(&http, &sim, Method::POST, "sendMessage", "application/json", big).await;
    assert_eq!((status, body.len()), (413, 0));
    assert_eq!(headers["connection"], "close");
    let big = format!("chat_id=5&text={}", "t".repeat(1 << 20));
    let (status, ..) =
        call_raw(&http, &sim, Method::POST, "sendMessage", "application/x-www-form-urlencoded", big).await;
    assert_eq!(status, 413);
    // a body just under the limit is fine
    let fits = json!({"chat_id": 5, "text": "x", "padding": "p".repeat((1 << 20) - 100)}).to_string();
    let (status, ..) = call_raw(&http, &sim, Method::POST, "sendMessage", "application/json", fits).await;
    assert_eq!(status, 200);
    // methods other than GET and POST, wherever they go
    for (method, path) in [
        (Method::PUT, format!("{}/sendMessage", base(&sim))),
        (Method::DELETE, format!("{}/getMe", base(&sim))),
        (Method::PATCH, format!("{}/file/bot{}/x", sim.api_url(), sim.token())),
        (Method::PUT, format!("{}/elsewhere", sim.api_url())),
    ] {
        let r = http.request(method.clone(), &path).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 501, "{method} {path}");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    assert_eq!(sim.sent().len(), 1, "only the request that fitted was handled");
}

#[tokio::test(start_paused = true)]
async fn long_poll_timeout_is_capped_at_50_seconds() {
    let sim = start(SimConfig::default()).await;
    let http = client();
    let t0 = tokio::time::Instant::now();
    let (status, body) = call(&http, &sim, "getUpdates", json!({"timeout": 600})).await;
    assert_eq!((status, body["result"].clone()), (200, json!([])));
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_secs(50) && waited < Duration::from_secs(51), "{waited:?}");
}
