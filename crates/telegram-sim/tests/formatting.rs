//! `parse_mode` and entities over HTTP: what a send or an edit answers and stores, the
//! Bot API's error strings, lengths after parsing, and "not modified" on parsed content.

mod support;

use mltb_telegram_sim::SimConfig;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{base, call, client, start};

fn description(body: &Value) -> &str {
    body["description"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn html_is_parsed_into_text_and_utf16_entities() {
    let sim = start(SimConfig::default().rate_limits(None)).await;
    sim.add_chat(7);
    let http = client();
    let html = "😀 <b>bold &amp; <i>both</i></b> <a href=\"https://example.com\">link</a> <code>x&lt;y</code> \
                <pre><code class=\"language-rust\">fn main() {}</code></pre> <tg-spoiler>s</tg-spoiler> \
                <blockquote expandable>q</blockquote>";
    let (status, body) =
        call(&http, &sim, "sendMessage", json!({"chat_id": 7, "text": html, "parse_mode": "HTML"})).await;
    assert_eq!(status, 200, "{body}");
    let message = &body["result"];
    assert_eq!(message["text"], "😀 bold & both link x<y fn main() {} s q");
    assert_eq!(
        message["entities"],
        json!([
            {"offset": 3, "length": 11, "type": "bold"},
            {"offset": 10, "length": 4, "type": "italic"},
            {"offset": 15, "length": 4, "type": "text_link", "url": "https://example.com/"},
            {"offset": 20, "length": 3, "type": "code"},
            {"offset": 24, "length": 12, "type": "pre", "language": "rust"},
            {"offset": 37, "length": 1, "type": "spoiler"},
            {"offset": 39, "length": 1, "type": "expandable_blockquote"},
        ])
    );
    // the log and the message state hold what the chat shows
    let id = message["message_id"].as_i64().unwrap() as i32;
    let state = sim.message(7, id).unwrap();
    assert_eq!(state.text.as_deref(), message["text"].as_str());
    assert_eq!(state.entities.as_ref(), Some(&message["entities"]));
    let sent = sim.sent();
    assert_eq!(sent[0].text.as_deref(), message["text"].as_str());
    assert_eq!(sent[0].entities.as_ref(), Some(&message["entities"]));

    // MarkdownV2 and the legacy Markdown are parsed too; a mention of a user by id
    let (_, body) = call(
        &http,
        &sim,
        "sendMessage",
        json!({"chat_id": 7, "text": "*b* [me](tg://user?id=42) 1\\.5", "parse_mode": "MarkdownV2"}),
    )
    .await;
    assert_eq!(body["result"]["text"], "b me 1.5");
    assert_eq!(body["result"]["entities"][1]["type"], "text_mention");
    assert_eq!(body["result"]["entities"][1]["user"]["id"], 42);
    let (_, body) = call(
        &http,
        &sim,
        "sendMessage",
        json!({"chat_id": 7, "text": "_it_ 1.5!", "parse_mode": "Markdown"}),
    )
    .await;
    assert_eq!(
        (body["result"]["text"].clone(), body["result"]["entities"].clone()),
        (json!("it 1.5!"), json!([{"offset": 0, "length": 2, "type": "italic"}]))
    );
}

#[tokio::test]
async fn bad_markup_gets_telegrams_errors_before_the_chat_is_checked() {
    let sim = start(SimConfig::default().rate_limits(None)).await;
    let http = client();
    let send = |text: &str, mode: Value| {
        let http = http.clone();
        let url = format!("{}/sendMessage", base(&sim));
        // chat 999 is unknown: the parse error must come first, as in Client.cpp
        let body = json!({"chat_id": 999, "text": text, "parse_mode": mode});
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, description(&body).to_owned())
        }
    };
    let entities = |m: &str| (400, format!("Bad Request: can't parse entities: {m}"));
    assert_eq!(
        send("<b>bold", json!("HTML")).await,
        entities("Can't find end tag corresponding to start tag \"b\"")
    );
    assert_eq!(
        send("é<foo>", json!("HTML")).await,
        entities("Unsupported start tag \"foo\" at byte offset 2")
    );
    assert_eq!(
        send("<b><i>x</b></i>", json!("html")).await,
        entities("Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\"")
    );
    assert_eq!(send("1 < 2", json!("HTML")).await, entities("Unsupported start tag \"\" at byte offset 2"));
    assert_eq!(
        send("1.5", json!("MarkdownV2")).await,
        entities("Character '.' is reserved and must be escaped with the preceding '\\'")
    );
    assert_eq!(
        send("*open", json!("Markdown")).await,
        entities("Can't find end of the entity starting at byte offset 0")
    );
    let unsupported = (400, "Bad Request: unsupported parse_mode".to_owned());
    assert_eq!(send("x", json!("Textile")).await, unsupported);
    // JSON null is the text "null" to the Bot API, not an absent parameter
    assert_eq!(send("x", Value::Null).await, unsupported);
    // a bare & is text in Telegram's HTML; with good markup the chat check comes next
    assert_eq!(send("a & b", json!("HTML")).await, (400, "Bad Request: chat not found".to_owned()));
    assert!(sim.sent().is_empty());
}

#[tokio::test]
async fn limits_count_the_text_after_parsing_and_trimming() {
    let sim = start(SimConfig::default().rate_limits(None)).await;
    sim.add_chat(3);
    let http = client();
    let send = |body: Value| call(&http, &sim, "sendMessage", body);
    let visible = "é".repeat(4096);
    let (status, _) =
        send(json!({"chat_id": 3, "text": format!("<b>{visible}</b>  \n"), "parse_mode": "HTML"})).await;
    assert_eq!(status, 200, "tags and trailing spaces do not count");
    let (status, body) =
        send(json!({"chat_id": 3, "text": format!("<b>{visible}x</b>"), "parse_mode": "HTML"})).await;
    assert_eq!((status, description(&body)), (400, "Bad Request: message is too long"));
    // whitespace-only or markup-only text: tdlib's "Text must be non-empty"
    for (text, mode) in [("  \n ", ""), ("<b></b>", "HTML"), ("\u{200b}", "")] {
        let (status, body) = send(json!({"chat_id": 3, "text": text, "parse_mode": mode})).await;
        assert_eq!((status, description(&body)), (400, "Bad Request: text must be non-empty"), "{text:?}");
    }
    let (_, body) = send(json!({"chat_id": 3, "text": "  hi  \n"})).await;
    assert_eq!(body["result"]["text"], "hi");

    // captions: 1024 after parsing
    let doc = |caption: String| {
        Form::new()
            .text("chat_id", "3")
            .text("caption", caption)
            .text("parse_mode", "HTML")
            .part("document", Part::bytes(b"data".to_vec()).file_name("a.txt"))
    };
    let url = format!("{}/sendDocument", base(&sim));
    let r = http.post(&url).multipart(doc(format!("<i>{}</i>", "c".repeat(1024)))).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["caption_entities"], json!([{"offset": 0, "length": 1024, "type": "italic"}]));
    let r = http.post(&url).multipart(doc(format!("<i>{}</i>", "c".repeat(1025)))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(description(&r.json().await.unwrap()), "Bad Request: message caption is too long");
}

#[tokio::test]
async fn not_modified_compares_parsed_text_and_entities() {
    let sim = start(SimConfig::default().rate_limits(None)).await;
    sim.add_chat(5);
    let http = client();
    let (_, sent) =
        call(&http, &sim, "sendMessage", json!({"chat_id": 5, "text": "<b>50%</b>", "parse_mode": "HTML"}))
            .await;
    let id = sent["result"]["message_id"].clone();
    let edit = |text: &str, mode: &str| {
        call(
            &http,
            &sim,
            "editMessageText",
            json!({"chat_id": 5, "message_id": id, "text": text, "parse_mode": mode}),
        )
    };
    // other markup, same parsed content: not modified
    let (status, body) = edit("<strong>50%</strong>", "HTML").await;
    assert_eq!(status, 400);
    assert!(description(&body).starts_with("Bad Request: message is not modified"), "{body}");
    let (status, body) = edit("*50%*", "MarkdownV2").await;
    assert_eq!(status, 400, "{body}");
    // the same text without the bold entity is a change
    let (status, body) = edit("50%", "").await;
    assert_eq!((status, body["result"]["text"].clone()), (200, json!("50%")));
    assert!(body["result"].get("entities").is_none(), "entities are removed with the formatting");
    // and italic instead of bold is one too
    edit("<b>50%</b>", "HTML").await;
    let (status, body) = edit("<i>50%</i>", "HTML").await;
    assert_eq!((status, body["result"]["entities"][0]["type"].clone()), (200, json!("italic")));
    assert_eq!(sim.message(5, id.as_i64().unwrap() as i32).unwrap().edit_count, 3);
}

#[tokio::test]
async fn explicit_entities_and_captions_in_edits_and_albums() {
    let sim = start(SimConfig::default().rate_limits(None)).await;
    sim.add_chat(8);
    let http = client();
    let entities =
        json!([{"type": "bold", "offset": 0, "length": 2}, {"type": "url", "offset": 3, "length": 5}]);
    let (status, body) =
        call(&http, &sim, "sendMessage", json!({"chat_id": 8, "text": "hi x.com", "entities": entities}))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["entities"], json!([{"offset": 0, "length": 2, "type": "bold"}]));
    let (status, body) = call(
        &http,
        &sim,
        "sendMessage",
        json!({"chat_id": 8, "text": "hi", "entities": [{"type": "bold", "offset": 1, "length": 5}]}),
    )
    .await;
    assert_eq!(
        (status, description(&body)),
        (
            400,
            "Bad Request: entity beginning at UTF-16 offset 1 ends after the end of the text at UTF-16 offset 6"
        )
    );

    // an album with formatted captions; then its caption is edited with explicit entities
    let media = json!([
        {"type": "document", "media": "attach://a", "caption": "<b>part</b> 1", "parse_mode": "HTML"},
        {"type": "document", "media": "attach://b", "caption": "part 2",
         "caption_entities": [{"type": "italic", "offset": 5, "length": 1}]},
    ]);
    let form = Form::new()
        .text("chat_id", "8")
        .text("media", media.to_string())
        .part("a", Part::bytes(b"1".to_vec()).file_name("f.001"))
        .part("b", Part::bytes(b"2".to_vec()).file_name("f.002"));
    let r = http.post(format!("{}/sendMediaGroup", base(&sim))).multipart(form).send().await.unwrap();
    let album: Value = r.json().await.unwrap();
    assert_eq!(album["result"][0]["caption"], "part 1");
    assert_eq!(album["result"][0]["caption_entities"], json!([{"offset": 0, "length": 4, "type": "bold"}]));
    assert_eq!(album["result"][1]["caption_entities"], json!([{"offset": 5, "length": 1, "type": "italic"}]));
    let id = album["result"][0]["message_id"].clone();
    let edit = json!({"chat_id": 8, "message_id": id, "caption": "<u>new</u>", "parse_mode": "HTML"});
    let (status, body) = call(&http, &sim, "editMessageCaption", edit).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["result"]["caption"].clone(), body["result"]["caption_entities"].clone()),
        (json!("new"), json!([{"offset": 0, "length": 3, "type": "underline"}]))
    );
    let edit = json!({"chat_id": 8, "message_id": id, "caption": "<u>new", "parse_mode": "HTML"});
    let (status, body) = call(&http, &sim, "editMessageCaption", edit).await;
    assert_eq!(
        (status, description(&body)),
        (400, "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"u\"")
    );
    // an empty caption removes it
    let (status, body) =
        call(&http, &sim, "editMessageCaption", json!({"chat_id": 8, "message_id": id, "caption": ""})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"].get("caption").is_none() && body["result"].get("caption_entities").is_none());
}
