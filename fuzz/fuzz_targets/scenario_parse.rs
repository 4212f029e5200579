//! Feeds TOML to the load generator's scenario parser, as the fuzzer writes it and as a
//! well-formed file whose keys and values the fuzzer picks. It must never panic; `${NAME}`
//! expansion must leave none behind; and every plan it accepts must keep the bounds that
//! `Plan::validate` and the crate docs promise (targets given, rate, users, connections,
//! run length, timeout, request count and threads within their limits, `http://` URLs,
//! weights 1 to 100), pass `validate` again, and allow remote targets only when the file
//! says so (the loopback check itself is made at run time, on the resolved addresses).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mltb_loadgen::{MAX_CONNECTIONS, MAX_REQUESTS, MAX_RUN, Mode, Scenario};
use toml::{Table, Value};

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
    if let Ok(text) = well_formed(&mut Unstructured::new(data)) {
        check(&text);
    }
});

fn check(text: &str) {
    let Ok(scenario) = Scenario::from_toml(text, "fuzz.toml") else { return };
    if let Ok(expanded) = scenario.clone().expand(|name| (name == "TOKEN").then(|| "t0ken".to_owned())) {
        for t in &expanded.targets {
            for s in std::iter::once(&t.url).chain(t.headers.values()).chain(&t.body) {
                assert!(!s.contains("${"), "{text:?}: {s:?} still holds a ${{…}}");
            }
        }
    }
    let Ok(plan) = scenario.plan() else { return };
    let run = &scenario.run;
    assert_eq!(plan.targets, scenario.targets, "{text:?}");
    assert!(!plan.targets.is_empty(), "{text:?}: a plan with no target");
    match plan.mode {
        Mode::Open { rate } => {
            assert!(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0, "{text:?}: rate {rate}")
        }
        Mode::Closed { users } => assert!((1..=MAX_CONNECTIONS).contains(&users), "{text:?}: {users} users"),
    }
    assert!((1..=MAX_CONNECTIONS).contains(&plan.connections), "{text:?}: {} connections", plan.connections);
    assert!(!plan.duration.is_zero(), "{text:?}: no duration");
    assert!(plan.duration + plan.warmup <= MAX_RUN, "{text:?}: {:?} + {:?}", plan.duration, plan.warmup);
    assert!(
        !plan.timeout.is_zero() && plan.timeout <= Duration::from_secs(300),
        "{text:?}: {:?}",
        plan.timeout
    );
    assert!((1..=MAX_REQUESTS).contains(&plan.max_requests), "{text:?}: {} requests", plan.max_requests);
    assert!((1..=256).contains(&plan.threads), "{text:?}: {} threads", plan.threads);
    assert!(plan.expected_interval.is_none_or(|d| !d.is_zero()), "{text:?}: a zero interval");
    assert_eq!(plan.allow_remote, run.allow_remote == Some(true), "{text:?}: remote targets allowed unasked");
    assert_eq!(plan.http2, run.http2 == Some(true), "{text:?}");
    for t in &plan.targets {
        assert!(t.url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")), "{text:?}: {:?}", t.url);
        assert!((1..=100).contains(&t.weight), "{text:?}: weight {}", t.weight);
    }
    if let Err(e) = plan.validate() {
        panic!("{text:?}: the plan it gave fails validation: {e}");
    }
}

const RUN_KEYS: [&str; 13] = [
    "mode",
    "rate",
    "users",
    "connections",
    "duration",
    "warmup",
    "timeout",
    "max_requests",
    "http2",
    "allow_remote",
    "expected_interval",
    "threads",
    "rte",
];

/// A scenario file with keys from the format and values the fuzzer picks, mostly of the
/// expected type and near the limits.
fn well_formed(u: &mut Unstructured<'_>) -> Result<String> {
    let mut run = Table::new();
    for _ in 0..u.int_in_range(0..=12)? {
        let key = *u.choose(&RUN_KEYS)?;
        let value = if u.ratio(1, 6)? { any_value(u)? } else { typical(u, key)? };
        run.insert(key.into(), value);
    }
    let mut targets = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let mut t = Table::new();
        t.insert("url".into(), Value::String(url(u)?));
        if u.ratio(1, 4)? {
            t.insert("name".into(), Value::String(u.arbitrary()?));
        }
        if u.ratio(1, 3)? {
            let method = if u.arbitrary()? {
                u.arbitrary()?
            } else {
                (*u.choose(&["GET", "POST", "HEAD", "G ET"])?).to_owned()
            };
            t.insert("method".into(), Value::String(method));
        }
        if u.ratio(1, 3)? {
            let mut headers = Table::new();
            for _ in 0..u.int_in_range(0..=2)? {
                let name = if u.arbitrary()? {
                    u.arbitrary()?
                } else {
                    (*u.choose(&["authorization", "content-type", "host"])?).to_owned()
                };
                let value = if u.arbitrary()? { u.arbitrary()? } else { "Bearer ${TOKEN}".to_owned() };
                headers.insert(name, Value::String(value));
            }
            t.insert("headers".into(), Value::Table(headers));
        }
        if u.ratio(1, 4)? {
            t.insert("body".into(), Value::String(u.arbitrary()?));
        }
        if u.ratio(1, 3)? {
            t.insert("weight".into(), Value::Integer(u.int_in_range(-1..=101)?));
        }
        if u.ratio(1, 20)? {
            t.insert("colour".into(), Value::Boolean(true));
        }
        targets.push(Value::Table(t));
    }
    let mut doc = Table::new();
    if !run.is_empty() || u.arbitrary()? {
        doc.insert("run".into(), Value::Table(run));
    }
    if !targets.is_empty() {
        doc.insert("target".into(), Value::Array(targets));
    }
    toml::to_string(&doc).map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn any_value(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Value::String(u.arbitrary()?),
        1 => Value::Integer(u.arbitrary()?),
        2 => Value::Float(u.arbitrary()?),
        _ => Value::Boolean(u.arbitrary()?),
    })
}

fn typical(u: &mut Unstructured<'_>, key: &str) -> Result<Value> {
    let limit = |u: &mut Unstructured<'_>, max: i64| -> Result<Value> {
        Ok(Value::Integer(match u.int_in_range(0..=3)? {
            0 => *u.choose(&[0, 1, max, max + 1, -1, i64::MAX])?,
            _ => u.int_in_range(0..=max + 1)?,
        }))
    };
    Ok(match key {
        "mode" => Value::String((*u.choose(&["open", "closed", "Open", ""])?).to_owned()),
        "rate" => Value::Float(match u.int_in_range(0..=2)? {
            0 => *u.choose(&[0.0, 1e-300, 1.0, 1e6, 1_000_000.000_001, f64::NAN, f64::INFINITY, -1.0])?,
            _ => u.arbitrary()?,
        }),
        "users" | "connections" => limit(u, MAX_CONNECTIONS as i64)?,
        "threads" => limit(u, 256)?,
        "max_requests" => limit(u, MAX_REQUESTS as i64)?,
        "http2" | "allow_remote" => Value::Boolean(u.arbitrary()?),
        "duration" | "warmup" | "timeout" | "expected_interval" => Value::String(duration(u)?),
        _ => any_value(u)?,
    })
}

fn duration(u: &mut Unstructured<'_>) -> Result<String> {
    let number = match u.int_in_range(0..=3)? {
        0 => {
            (*u.choose(&["0", "1", "0.5", "3600", "86400", "86400.001", "1.", ".5", "1.2.3", ""])?).to_owned()
        }
        1 => u.arbitrary::<f64>()?.to_string(),
        _ => u.int_in_range(0u32..=100_000)?.to_string(),
    };
    let unit = *u.choose(&["", "s", "ms", "m", "min", "h", "d", " s", "S"])?;
    Ok(format!("{number}{unit}"))
}

fn url(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 5)? {
        return u.arbitrary();
    }
    let scheme = *u.choose(&["http://", "HTTP://", "https://", "ftp://", ""])?;
    let host = *u.choose(&["127.0.0.1", "localhost", "[::1]", "example.com", "", "${TOKEN}"])?;
    let port = if u.arbitrary()? { format!(":{}", u.int_in_range(0u32..=70_000)?) } else { String::new() };
    let path: String = u.arbitrary()?;
    Ok(format!("{scheme}{host}{port}/{path}"))
}
