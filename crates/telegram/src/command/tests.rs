use proptest::prelude::*;

use super::*;

fn parser() -> CommandParser {
    CommandParser::builder().bot_username("mltb_bot").build()
}

fn task(text: &str) -> TaskArgs {
    match parser().parse(text, None).unwrap().unwrap().args {
        Args::Task(t) => *t,
        Args::Words(w) => panic!("not a task: {w:?}"),
    }
}

#[test]
fn names_aliases_mentions_and_suffix() {
    let p = parser();
    assert_eq!(p.parse("/mirror x", None).unwrap().unwrap().name, "mirror");
    assert_eq!(p.parse("/M x", None).unwrap().unwrap().name, "mirror");
    assert_eq!(p.parse("/l@MLTB_bot x", None).unwrap().unwrap().name, "leech");
    assert_eq!(p.parse("/status", None).unwrap().unwrap().args, Args::Words(vec![]));
    assert!(p.parse("/mirror@other_bot x", None).unwrap().is_none());
    assert!(p.parse("hello /mirror", None).unwrap().is_none());
    assert!(p.parse("/unknown", None).unwrap().is_none());
    assert!(CommandParser::default().parse("/m@any x", None).unwrap().is_none());

    let s = CommandParser::builder().suffix("1").alias("mir", "mirror").build();
    assert_eq!(s.parse("/mirror1 x", None).unwrap().unwrap().name, "mirror");
    assert_eq!(s.parse("/m1 x", None).unwrap().unwrap().name, "mirror");
    assert_eq!(s.parse("/mir1 x", None).unwrap().unwrap().name, "mirror");
    assert!(s.parse("/mirror x", None).unwrap().is_none(), "without the suffix it is another bot's");
    let none = CommandParser::builder().clear_aliases().build();
    assert!(none.parse("/m x", None).unwrap().is_none());
}

#[test]
fn flags() {
    let t = task(
        r#"/leech https://a.test/x -n my new name -s -sp 2gb -up remote:dir/sub -doc -z -e "pa ss" -i 3 -b 2:10 -m folder"#,
    );
    assert_eq!(t.link.as_deref(), Some("https://a.test/x"));
    assert_eq!(t.name.as_deref(), Some("my new name"));
    assert!(t.select);
    assert_eq!(t.split_size, Some(2 << 30));
    assert_eq!(t.upload.as_deref(), Some("remote:dir/sub"));
    assert_eq!(t.upload_as, Some(UploadAs::Document));
    assert_eq!(t.zip, Some(None));
    assert_eq!(t.extract, Some(Some("pa ss".into())));
    assert_eq!(t.multi, Some(3));
    assert_eq!(t.bulk, Some(BulkRange { start: Some(2), end: Some(10) }));
    assert_eq!(t.same_dir.as_deref(), Some("folder"));

    let t = task("/m -z secret https://a.test/x");
    assert_eq!((t.zip, t.link.as_deref()), (Some(Some("secret".into())), Some("https://a.test/x")));
    let t = task("/m -z https://a.test/x");
    assert_eq!(
        (t.zip, t.link.as_deref()),
        (Some(None), Some("https://a.test/x")),
        "a link is not a password"
    );
    let t = task("/m x -b :5");
    assert_eq!(t.bulk, Some(BulkRange { start: None, end: Some(5) }));
    let t = task("/m x -b");
    assert_eq!(t.bulk, Some(BulkRange::default()));
    let t = task(r#"/m x -n "-dash \"q\"""#);
    assert_eq!(t.name.as_deref(), Some(r#"-dash "q""#));
}

#[test]
fn errors_name_the_flag() {
    let p = parser();
    let err = |text: &str| p.parse(text, None).unwrap_err().to_string();
    assert_eq!(err("/m x -sp abc"), r#"-sp: expected a size like 500mb, got "abc""#);
    assert_eq!(err("/m x -sp"), "-sp: expected a size like 500mb, got nothing");
    assert_eq!(err("/m x -i 0"), r#"-i: expected a number of links like 3, got "0""#);
    assert_eq!(err("/m x -n"), "-n: expected a name, got nothing");
    assert_eq!(err("/m x -n -s"), "-n: expected a name, got nothing");
    let not_a_file_name = "expected a file name without '/', '\\' or NUL, other than '.' and '..'";
    for name in ["../../etc/passwd", "a/b.mkv", r"a\b", "..", ".", "x\0y"] {
        assert_eq!(
            err(&format!("/l x -n \"{name}\"")),
            format!("-n: {not_a_file_name}, got {name:?}"),
            "{name:?}"
        );
    }
    assert_eq!(
        task("/l x -n ..hidden.. name").name.as_deref(),
        Some("..hidden.. name"),
        "dots within a name"
    );
    assert!(err("/m x -q").starts_with("unknown flag -q for /mirror; known flags: -n"));
    assert_eq!(err("/m x -s -s"), "-s is given twice");
    assert_eq!(err("/m x -doc -med"), "-doc and -med cannot be used together");
    assert!(err("/m x y").contains("unexpected argument \"y\""));
    assert!(err("/m x -n \"open").contains("unclosed"));
    assert!(err("/m x -b 99999999999").contains("-b: expected a range"));
}

#[test]
fn links_from_the_reply() {
    let p = parser();
    let reply = Reply::Text("https://r.test/file more words".into());
    let Args::Task(t) = p.parse("/m -n x", Some(&reply)).unwrap().unwrap().args else { panic!() };
    assert_eq!(t.link.as_deref(), Some("https://r.test/file"));
    let doc = Reply::Document(Document { file_id: "F1".into(), file_name: Some("a.zip".into()) });
    let Args::Task(t) = p.parse("/l -e", Some(&doc)).unwrap().unwrap().args else { panic!() };
    assert_eq!(t.document.as_ref().map(|d| d.file_id.as_str()), Some("F1"));
    assert_eq!(t.link, None);
    let Args::Task(t) = p.parse("/l own", Some(&doc)).unwrap().unwrap().args else { panic!() };
    assert_eq!((t.link.as_deref(), t.document), (Some("own"), None), "the command's link wins");
    // With -b or -i the replied message is the list: neither its first word nor its
    // document becomes the link.
    for text in ["/l -b", "/l -b 2:3", "/m -i 3"] {
        let Args::Task(t) = p.parse(text, Some(&reply)).unwrap().unwrap().args else { panic!() };
        assert_eq!((t.link.as_deref(), t.document.as_ref()), (None, None), "{text}");
        let Args::Task(t) = p.parse(text, Some(&doc)).unwrap().unwrap().args else { panic!() };
        assert_eq!((t.link.as_deref(), t.document.as_ref()), (None, None), "{text}");
    }
}

/// One piece of real Telegram text: any scalar value (controls and NUL included), line
/// breaks and tabs, zero-width and bidirectional marks, emoji with skin tones, ZWJ
/// sequences, flags and keycaps, and the characters the command language gives meaning to.
fn telegram_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<char>().prop_map(String::from),
        2 => "[a-z0-9:/._]{1,6}",
        1 => prop::sample::select(vec!["\n", "\r\n", "\t", "\0", " ", "  ", "\u{a0}", "\u{85}", "\u{3000}"])
            .prop_map(str::to_owned),
        2 => prop_oneof![
            proptest::char::range('\u{200B}', '\u{200F}'),
            proptest::char::range('\u{202A}', '\u{202E}'),
            proptest::char::range('\u{2066}', '\u{2069}'),
            Just('\u{FEFF}'),
        ]
        .prop_map(String::from),
        2 => prop::sample::select(vec![
            "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇦", "🇯🇵", "1️⃣", "❤️", "🧑🏿‍🚀", "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
        ])
        .prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "\"", "'", "\\", "-", "/", "@", ":", "-n", "-s", "-sp", "-up", "-doc", "-med", "-z", "-e", "-i", "-b",
            "-m", "/m", "/mirror", "/leech@mltb_bot", "https://", "magnet:?xt=",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Real Telegram text: up to 80 pieces.
fn telegram_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(telegram_piece(), 0..80).prop_map(|pieces| pieces.concat())
}

/// A token of 5 000 to 10 000 repetitions of a short piece of Telegram text.
fn long_token() -> impl Strategy<Value = String> {
    (proptest::collection::vec(telegram_piece(), 1..3), 5_000_usize..=10_000).prop_map(|(unit, n)| {
        let unit = unit.concat();
        let mut token = unit.repeat(n.div_ceil(unit.chars().count().max(1)));
        token.truncate(token.char_indices().nth(n).map_or(token.len(), |(i, _)| i));
        token
    })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9:/._]{1,12}", "[ -~]{1,12}", "\\PC{1,8}", telegram_text()]
        .prop_filter("non-empty after trim", |s| !s.trim().is_empty())
}

/// A value `-n` takes: one file name.
fn file_name() -> impl Strategy<Value = String> {
    value().prop_filter("a file name", |s| s != "." && s != ".." && !s.contains(['/', '\\', '\0']))
}

fn task_args() -> impl Strategy<Value = TaskArgs> {
    (
        (proptest::option::of(value()), proptest::option::of(file_name()), any::<bool>()),
        (proptest::option::of(1u64..u64::MAX / 2), proptest::option::of(value())),
        proptest::option::of(prop_oneof![Just(UploadAs::Document), Just(UploadAs::Media)]),
        (
            proptest::option::of(proptest::option::of(value())),
            proptest::option::of(proptest::option::of(value())),
        ),
        (
            proptest::option::of(1u32..1000),
            proptest::option::of((proptest::option::of(0u32..100), proptest::option::of(0u32..100))),
        ),
        proptest::option::of(value()),
    )
        .prop_map(
            |(
                (link, name, select),
                (split_size, upload),
                upload_as,
                (zip, extract),
                (multi, bulk),
                same_dir,
            )| {
                TaskArgs {
                    link,
                    document: None,
                    name: name.map(normalize_words),
                    select,
                    split_size,
                    upload: upload.map(normalize_words),
                    upload_as,
                    zip,
                    extract,
                    multi,
                    bulk: bulk.map(|(start, end)| BulkRange { start, end }),
                    same_dir: same_dir.map(normalize_words),
                }
            },
        )
}

/// Multi-word values that render as one quoted word round-trip exactly.
fn normalize_words(s: String) -> String {
    s
}

proptest! {
    #[test]
    fn render_then_parse_is_identity(args in task_args(), leech in any::<bool>(), suffix in "[0-9]{0,2}") {
        let p = CommandParser::builder().suffix(suffix).build();
        let cmd = Command { name: if leech { "leech" } else { "mirror" }.into(), args: Args::Task(Box::new(args)) };
        let text = p.render(&cmd);
        let parsed = p.parse(&text, None).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(parsed, Some(cmd), "text {:?}", text);
    }

    #[test]
    fn words_round_trip(words in proptest::collection::vec(prop_oneof!["\\PC{0,8}", telegram_text()], 0..5)) {
        let p = parser();
        let cmd = Command { name: "cancel".into(), args: Args::Words(words) };
        prop_assert_eq!(p.parse(&p.render(&cmd), None).unwrap(), Some(cmd));
    }

    #[test]
    fn never_panics(text in telegram_text()) {
        let parsers = [parser(), CommandParser::builder().suffix("1").bot_username("mltb_bot").build()];
        for p in &parsers {
            let _ = p.parse(&text, None);
            let _ = p.parse(&format!("/m {text}"), Some(&Reply::Text(text.clone())));
            let _ = p.parse(&format!("/leech1@mltb_bot {text}"), None);
            let _ = p.parse(&format!("/cancel {text}"), Some(&Reply::Text(text.clone())));
            let _ = p.parse(&format!("/{text}"), None);
        }
    }

    #[test]
    fn never_panics_on_very_long_tokens(token in long_token(), other in telegram_text()) {
        let p = parser();
        let texts = [
            format!("/m {token}"),
            format!("/{token} {other}"),
            format!("/m@{token} x"),
            format!("/m x -n {token} -z {token}"),
            format!("/m x -sp {token}"),
            format!("/m x -i {token}"),
            format!("/m x -b {token}"),
            format!("/m x -up \"{token}\" {other}"),
            format!("/m \"{token}"),
            format!("/cancel {token} {other}"),
        ];
        for text in &texts {
            let _ = p.parse(text, Some(&Reply::Text(token.clone())));
        }
    }
}

#[test]
fn real_telegram_text_parses_as_expected() {
    let p = parser();
    // a command on its own line, then a link and a name with emoji and zero-width joiners
    let cmd = p.parse("/m https://x.test/a\n-n 👨\u{200D}👩\u{200D}👧 film.mkv", None).unwrap().unwrap();
    let Args::Task(t) = cmd.args else { panic!("a task") };
    assert_eq!(t.link.as_deref(), Some("https://x.test/a"));
    assert_eq!(t.name.as_deref(), Some("👨\u{200D}👩\u{200D}👧 film.mkv"));
    // tabs separate; a zero-width space is not a separator; NUL is a character
    let cmd = p.parse("/cancel\tab12\u{200B}\tx\u{0}y", None).unwrap().unwrap();
    assert_eq!(cmd.args, Args::Words(vec!["ab12\u{200B}".into(), "x\u{0}y".into()]));
    // the text must start with `/` (after whitespace): a bidi mark before it is not skipped
    assert!(p.parse("\u{200F}/mirror x", None).unwrap().is_none());
    // a flag-looking token with a right-to-left mark inside is a value, not an unknown flag
    let cmd = p.parse("/m x -n \u{202E}-sp", None).unwrap().unwrap();
    let Args::Task(t) = cmd.args else { panic!("a task") };
    assert_eq!(t.name.as_deref(), Some("\u{202E}-sp"));
    // a 10 000-character link is kept whole
    let long = format!("https://x.test/{}", "a".repeat(10_000));
    let Args::Task(t) = p.parse(&format!("/l {long}"), None).unwrap().unwrap().args else { panic!("a task") };
    assert_eq!(t.link.map(|l| l.len()), Some(long.len()));
}
