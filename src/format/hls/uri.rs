//! Adding a query to every URI a media playlist names: the lines after EXTINF and every `URI="…"`
//! attribute (EXT-X-MAP, EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT). A server that
//! signs its URLs (the hub's HLS tokens) renders the playlist once and signs it per client.

/// `playlist` with `query` (already escaped, without `?`) added to every URI: after a `?`, or an
/// `&` when the URI has a query already.
pub fn add_query(playlist: &str, query: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64 * (query.len() + 1));
    let sep = |uri: &str| if uri.contains('?') { '&' } else { '?' };
    for line in playlist.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => match b.strip_suffix('\r') {
                Some(b) => (b, "\r\n"),
                None => (b, "\n"),
            },
            None => (line, ""),
        };
        if body.is_empty() {
            out.push_str(line);
            continue;
        }
        if !body.starts_with('#') {
            out.push_str(body);
            out.push(sep(body));
            out.push_str(query);
            out.push_str(end);
            continue;
        }
        // A tag: every URI="..." attribute (quoted strings hold no '"', RFC 8216 4.2).
        let mut rest = body;
        while let Some(at) = rest.find("URI=\"") {
            let start = at + 5;
            let Some(len) = rest[start..].find('"') else {
                break;
            };
            let uri = &rest[start..start + len];
            out.push_str(&rest[..start + len]);
            out.push(sep(uri));
            out.push_str(query);
            rest = &rest[start + len..];
        }
        out.push_str(rest);
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_gets_the_query() {
        let p = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"a-init.mp4\"\n\
                 #EXT-X-PART:DURATION=0.20000,URI=\"p1.m4s\",INDEPENDENT=YES\n\
                 #EXTINF:2.00000,\na-1.m4s\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n\
                 #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p2.m4s\"\n\
                 #EXT-X-RENDITION-REPORT:URI=\"x.m3u8?a=1\",LAST-MSN=4\nb.ts?x=y\r\n\n";
        let want = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"a-init.mp4?t=1\"\n\
                 #EXT-X-PART:DURATION=0.20000,URI=\"p1.m4s?t=1\",INDEPENDENT=YES\n\
                 #EXTINF:2.00000,\na-1.m4s?t=1\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n\
                 #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p2.m4s?t=1\"\n\
                 #EXT-X-RENDITION-REPORT:URI=\"x.m3u8?a=1&t=1\",LAST-MSN=4\nb.ts?x=y&t=1\r\n\n";
        assert_eq!(add_query(p, "t=1"), want);
        // Nothing else changes: without URIs, the text is the same.
        let plain = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-ENDLIST\n";
        assert_eq!(add_query(plain, "t=1"), plain);
        // An unterminated attribute is left as it is.
        assert_eq!(add_query("#X:URI=\"a\n", "t=1"), "#X:URI=\"a\n");
        assert_eq!(add_query("a.ts", "t=1"), "a.ts?t=1");
    }
}
