//! The one name and password rule (river::proto::names) and the URL pieces every front takes
//! names from, on arbitrary text: no panic; a name that passes follows the rule and decodes to
//! itself; every refusal is one short line; a decoded password passes the password rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::proto::names::{self, MAX_NAME};
use river::proto::rtmp::policy::{Connect, Stream, HUB_WORDS, INGEST_WORDS};
use river::relay::rtsp::parse_key;

fn one_line(m: &str) {
    assert!(!m.contains('\n') && !m.contains('\r'), "{m:?}");
    assert!(m.len() < 600, "{} bytes", m.len());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        if let Err(e) = names::check_name_bytes(data) {
            one_line(&names::BadName::new(data, e).message("user"));
        }
        return;
    };
    if let Ok(raw) = names::percent_decode(text) {
        assert!(raw.len() <= text.len());
    }
    match names::decode_name(text) {
        Ok(n) => {
            assert!(names::valid_name(&n) && !n.is_empty() && n.len() <= MAX_NAME);
            assert_eq!(names::decode_name(&n).as_deref(), Ok(n.as_str()));
        }
        Err(e) => {
            one_line(&e.message("channel"));
            one_line(&e.message_hidden("key"));
        }
    }
    if names::check_name(text).is_ok() {
        assert_eq!(names::decode_name(text).as_deref(), Ok(text));
    }
    if let Ok(p) = names::decode_password(text) {
        assert!(names::check_password(&p).is_ok());
    }
    if let Some(Ok(p)) = names::query_password(text, "user-password") {
        assert!(names::check_password(&p).is_ok());
    }
    match parse_key(text) {
        Ok((u, c)) => assert!(names::valid_name(&u) && names::valid_name(&c)),
        Err(m) => one_line(&m),
    }
    let (app, rest) = text.split_once('/').unwrap_or((text, ""));
    let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
    let s = Stream::new(&Connect::parse(app, Some(text)), name, query);
    for words in [HUB_WORDS, INGEST_WORDS] {
        match s.names(words) {
            Ok(n) => assert!(names::valid_name(&n.app) && names::valid_name(&n.name)),
            Err(r) => one_line(&r.to_string()),
        }
    }
    one_line(&s.label());
    let _ = (s.user_password(), s.channel_password());
});
