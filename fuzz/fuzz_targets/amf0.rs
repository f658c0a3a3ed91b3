//! AMF0 script data on arbitrary bytes: no panic, no stack overflow, no huge allocation; what
//! decodes as metadata re-encodes and decodes to the same properties. The same bytes as an RTMP
//! command: what decodes re-encodes to a command that decodes the same, and its connect
//! `fourCcList` (Enhanced RTMP) holds at most MAX_FOURCC_LIST strings, the same after the
//! re-encoding; every video tag body judged against it gets an answer without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::format::flv::{metadata_body, parse_script};

fuzz_target!(|data: &[u8]| {
    let body = bytes::Bytes::copy_from_slice(data);
    let _ = river::proto::rtmp::unannounced_codec(&["avc1".to_string()], &body);
    if let Ok(c) = river::proto::rtmp::Command::parse(data) {
        let mut vals = vec![c.object.clone()];
        vals.extend(c.args.iter().cloned());
        let enc = river::proto::rtmp::Command::encode(&c.name, c.transaction_id, &vals);
        let again =
            river::proto::rtmp::Command::parse(&enc).expect("re-encoded command must decode");
        let list = c.fourcc_list();
        assert!(list
            .as_ref()
            .is_none_or(|l| l.len() <= river::proto::rtmp::MAX_FOURCC_LIST));
        assert_eq!(again.fourcc_list(), list);
        if let Some(l) = &list {
            // The same bytes as a video tag body, judged against the list.
            let _ = river::proto::rtmp::unannounced_codec(l, &body);
        }
        let mut vals2 = vec![again.object.clone()];
        vals2.extend(again.args.iter().cloned());
        assert_eq!(
            river::proto::rtmp::Command::encode(&again.name, again.transaction_id, &vals2),
            enc
        );
    }
    let Ok(s) = parse_script(data) else {
        return;
    };
    let Some(props) = s.metadata() else {
        return;
    };
    let props: Vec<(&str, river::format::flv::amf0::Value)> =
        props.map(|(k, v)| (k, v.clone())).collect();
    let body = metadata_body(&props);
    let again = parse_script(&body).expect("re-encoded metadata must decode");
    let again: Vec<(&str, river::format::flv::amf0::Value)> = again
        .metadata()
        .expect("still metadata")
        .map(|(k, v)| (k, v.clone()))
        .collect();
    // NaN != NaN: compare the encodings instead.
    assert_eq!(metadata_body(&again), body);
});
