//! A publish or play hook's answer ([`river::http::client::parse_response`], then what the hub
//! makes of it, [`river::relay::hooks::verdict`]): never panics, a body is never longer than the
//! input, the log line is one line, and a complete prefix decides (bytes after a complete response
//! change nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::http::client::{parse_response, Parsed};
use river::relay::hooks::{verdict, Hook};

fuzz_target!(|data: &[u8]| {
    let Some((&flag, data)) = data.split_first() else {
        return;
    };
    let eof = flag & 1 == 1;
    if let Ok(Parsed::Done(r)) = parse_response(data, eof) {
        assert!(r.body.len() <= data.len());
        let (_, v) = verdict(Hook::Publish, &Ok(r));
        if let Err(why) = v {
            assert!(!why.contains(['\r', '\n']), "{why:?}");
        }
    }
    let cut = usize::from(flag >> 1) % (data.len() + 1);
    if let Ok(Parsed::Done(r)) = parse_response(&data[..cut], false) {
        assert_eq!(parse_response(data, false).ok(), Some(Parsed::Done(r)));
    }
});
