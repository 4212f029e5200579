//! A long, busy run keeps the simulator's state within `Retention`: every count stays at or
//! under its limit, and what was forgotten answers as Telegram answers for the unknown.

mod support;

use mltb_telegram_sim::{Retention, SimConfig};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{base, call, client, start};

#[tokio::test]
async fn state_stays_within_the_retention_limits() {
    let mut retention = Retention::default().file_bytes(6 * 1024);
    retention.chats = 6;
    retention.messages_per_chat = 20;
    retention.messages = 50;
    retention.files = 5;
    retention.pending_updates = 30;
    retention.sent_log = 40;
    retention.callback_queries = 8;
    retention.callback_answers = 4;
    let sim = start(SimConfig::default().rate_limits(None).retention(retention)).await;
    let http = client();
    let first_chat = 1;
    let mut first_message = None;
    // 600 sends and edits over 10 chats, registered as they are used
    for n in 0..300_i64 {
        let chat = 1 + n % 10;
        sim.add_chat(chat);
        let (status, body) = call(
            &http,
            &sim,
            "sendMessage",
            json!({"chat_id": chat, "text": format!("<b>m{n}</b>"), "parse_mode": "HTML"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let id = body["result"]["message_id"].clone();
        first_message.get_or_insert((chat, id.clone()));
        let edit = json!({"chat_id": chat, "message_id": id, "text": format!("m{n} done")});
        assert_eq!(call(&http, &sim, "editMessageText", edit).await.0, 200);
    }
    // 40 uploads of 1 KiB
    let mut file_ids = Vec::new();
    for n in 0..40 {
        let form = Form::new()
            .text("chat_id", "10")
            .part("document", Part::bytes(vec![n as u8; 1024]).file_name(format!("f{n}.bin")));
        let r = http.post(format!("{}/sendDocument", base(&sim))).multipart(form).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        file_ids.push(body["result"]["document"]["file_id"].as_str().unwrap().to_owned());
    }
    // 100 users' messages nobody polls for, 30 button presses, every one answered
    for n in 0..100 {
        sim.send_text(10, 10, &format!("user {n}"));
    }
    let mut queries = Vec::new();
    for _ in 0..30 {
        let update = sim.press_button(10, 10, 1, "c:1");
        queries.push(update);
    }
    let (_, updates) = call(&http, &sim, "getUpdates", json!({"offset": -30})).await;
    let query_ids: Vec<String> = updates["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["callback_query"]["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(query_ids.len(), 30);
    for id in &query_ids[query_ids.len() - 8..] {
        let (status, body) = call(&http, &sim, "answerCallbackQuery", json!({"callback_query_id": id})).await;
        assert_eq!(status, 200, "{body}");
    }

    let stats = sim.stats();
    let r = &stats.retained;
    assert!(r.chats <= 6, "{r:?}");
    assert!(r.max_messages_in_a_chat <= 20, "{r:?}");
    assert!(r.messages <= 50, "{r:?}");
    assert!(r.files <= 5 && r.file_bytes <= 6 * 1024, "{r:?}");
    assert!(r.pending_updates <= 30, "{r:?}");
    assert!(r.sent_log <= 40 && sim.sent().len() <= 40, "{r:?}");
    assert!(r.callback_queries <= 8 && r.callback_answers <= 4, "{r:?}");
    assert_eq!(sim.callback_answers().len(), 4);
    assert!(stats.dropped_updates >= 100 - 30, "{stats:?}");
    let on_disk = std::fs::read_dir(sim.files_dir().join("documents")).unwrap().count();
    assert!(on_disk <= 5, "{on_disk} files left on disk");
    // the log keeps counting past what it keeps
    assert_eq!(sim.sent().last().unwrap().seq, 600 + 40 - 1);

    // what was forgotten answers as the unknown does on Telegram
    let (status, body) =
        call(&http, &sim, "sendDocument", json!({"chat_id": 10, "document": file_ids[0]})).await;
    assert_eq!(
        (status, body["description"].clone()),
        (400, json!("Bad Request: wrong file identifier/HTTP URL specified"))
    );
    let (status, _) =
        call(&http, &sim, "sendDocument", json!({"chat_id": 10, "document": file_ids[39]})).await;
    assert_eq!(status, 200, "the newest file is kept");
    let (status, body) =
        call(&http, &sim, "answerCallbackQuery", json!({"callback_query_id": query_ids[0]})).await;
    assert_eq!(
        (status, body["description"].clone()),
        (400, json!("Bad Request: query is too old and response timeout expired or query ID is invalid"))
    );
    let (chat, id) = first_message.unwrap();
    assert_eq!(chat, first_chat);
    let (status, body) =
        call(&http, &sim, "editMessageText", json!({"chat_id": chat, "message_id": id, "text": "late"}))
            .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(&http, &sim, "getChat", json!({"chat_id": 2})).await;
    assert_eq!(
        (status, body["description"].clone()),
        (400, json!("Bad Request: chat not found")),
        "chat 2 is the least recently used"
    );
}
