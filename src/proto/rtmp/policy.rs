//! The RTMP publish/play policy that river-rtmp-in and the relay hub share: what a `connect`, a
//! `publish` and a `play` name, and whether a server accepts them. Pure: the fields of
//! [`ServerEvent`](super::ServerEvent)s and facts about the server's state go in, names and
//! decisions come out; no sockets, no clock.
//!
//! The rules (the relay hub's, which river-rtmp-in follows too):
//! - The application is the connect's `app` up to its first `?`, trimmed of `/` on both sides
//!   (`/live/` is `live`; `a/b` stays `a/b`).
//! - The connect query is what follows that `?`; when `app` has none (or an empty one), what
//!   follows the first `?` of `tcUrl`. Encoders put a password there:
//!   `rtmp://HOST/fier?user-password=123/cam`.
//! - A publish or play names its stream with the name up to the first `?`; its query (after the
//!   `?`) is searched for a parameter first, then the connect query.
//! - A parameter is `key=value` between `&`s, matched exactly, the value as sent (no decoding);
//!   a key without `=` has the empty value.
//! - A publish needs a non-empty application and stream name; a connection publishes or plays
//!   once.
//!
//! [`Access`] holds what a server restricts on top: river-rtmp-in's `--app` and `--key`/`--keys`
//! (the hub checks its users itself, after [`Access::publish`]).

use std::collections::HashSet;
use std::fmt;

/// What a `connect` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connect {
    /// The application: `app` without its query, trimmed of `/` on both sides.
    pub app: String,
    /// The connect URL's query (from `app`, else from `tcUrl`); empty when none.
    pub query: String,
}

impl Connect {
    /// Parses a connect's `app` and `tcUrl`.
    pub fn parse(app: &str, tc_url: Option<&str>) -> Connect {
        let (a, q) = app.split_once('?').unwrap_or((app, ""));
        let query = if q.is_empty() {
            tc_url
                .and_then(|t| t.split_once('?'))
                .map(|(_, q)| q.to_string())
                .unwrap_or_default()
        } else {
            q.to_string()
        };
        Connect {
            app: a.trim_matches('/').to_string(),
            query,
        }
    }
}

/// The value of `key` in a query (`a=1&b=2`): the first `key=value` whose key matches exactly;
/// `Some("")` for `key` or `key=`; `None` when absent.
pub fn query_param(q: &str, key: &str) -> Option<String> {
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_string())
    })
}

/// A publish or play: the application of its connect, the stream name and both queries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// The application (from [`Connect::app`]).
    pub app: String,
    /// The stream name (the key of a publish) without its query.
    pub name: String,
    /// The stream name's query.
    pub query: String,
    /// The connect's query.
    pub connect_query: String,
}

impl Stream {
    /// A publish or play on a connection that connected with `connect`, naming `name` with
    /// `query` (as [`ServerEvent::Publish`](super::ServerEvent::Publish) and
    /// [`ServerEvent::Play`](super::ServerEvent::Play) split them).
    pub fn new(connect: &Connect, name: &str, query: &str) -> Stream {
        Stream {
            app: connect.app.clone(),
            name: name.to_string(),
            query: query.to_string(),
            connect_query: connect.query.clone(),
        }
    }

    /// A parameter from the stream name's query, else from the connect query.
    pub fn param(&self, key: &str) -> Option<String> {
        query_param(&self.query, key).or_else(|| query_param(&self.connect_query, key))
    }

    /// The hub's `user-password` (empty when absent).
    pub fn user_password(&self) -> String {
        self.param("user-password").unwrap_or_default()
    }

    /// The hub's channel password, `password` (a publisher sets it, players must match it).
    pub fn channel_password(&self) -> Option<String> {
        self.param("password")
    }
}

/// What a server calls the two names in its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    pub app: &'static str,
    pub name: &'static str,
}

/// The relay hub's words: `rtmp://HOST/<user>/<channel>`.
pub const HUB_WORDS: Words = Words {
    app: "user",
    name: "channel",
};
/// river-rtmp-in's words: `rtmp://HOST/<app>/<key>`.
pub const INGEST_WORDS: Words = Words {
    app: "app",
    name: "key",
};

/// Why a connect, publish or play is refused. `Display` gives the description sent to the client
/// (in the `_error` or `onStatus`) and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The connection already publishes or plays.
    Busy,
    /// The application or the stream name is empty.
    NoName(Words),
    /// The application is not the one the server serves.
    UnknownApp(String),
    /// The stream key is not one of the accepted keys.
    KeyNotAccepted,
    /// Another connection publishes this key now.
    KeyLive,
    /// The server's one output is taken by another publisher.
    OutputBusy,
    /// The server does not serve players.
    NoPlay,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Busy => f.write_str("one publish or play per connection"),
            Refusal::NoName(w) => write!(f, "publish to rtmp://HOST/<{}>/<{}>", w.app, w.name),
            Refusal::UnknownApp(a) => write!(f, "unknown application {a:?}"),
            Refusal::KeyNotAccepted => f.write_str("stream key not accepted"),
            Refusal::KeyLive => f.write_str("this stream key is already publishing"),
            Refusal::OutputBusy => {
                f.write_str("another publisher is active (stdout carries one stream)")
            }
            Refusal::NoPlay => f.write_str("river-rtmp-in only accepts publishers"),
        }
    }
}

/// What the server knows when a publish comes, beyond the names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishState {
    /// This connection already publishes or plays.
    pub conn_busy: bool,
    /// Another connection publishes the same key now (river-rtmp-in: one publisher per key).
    pub key_live: bool,
    /// The one output is taken (river-rtmp-in without `--exec`: stdout carries one stream).
    pub output_busy: bool,
}

/// Who may connect, publish and play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    app: Option<String>,
    keys: Option<HashSet<String>>,
    play: bool,
    words: Words,
}

impl Access {
    /// The relay hub's: any application and name (it checks the user's password itself), players
    /// served.
    pub fn hub() -> Access {
        Access {
            app: None,
            keys: None,
            play: true,
            words: HUB_WORDS,
        }
    }

    /// river-rtmp-in's: only `app` when given (trimmed of `/` like a connect's), only `keys` when
    /// given, no players.
    pub fn ingest(app: Option<&str>, keys: Option<HashSet<String>>) -> Access {
        Access {
            app: app.map(|a| a.trim_matches('/').to_string()),
            keys,
            play: false,
            words: INGEST_WORDS,
        }
    }

    /// The application this server is limited to, if any.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// How many keys are accepted (`None`: any).
    pub fn key_count(&self) -> Option<usize> {
        self.keys.as_ref().map(HashSet::len)
    }

    /// Decides a connect.
    pub fn connect(&self, c: &Connect) -> Result<(), Refusal> {
        match &self.app {
            Some(want) if *want != c.app => Err(Refusal::UnknownApp(c.app.clone())),
            _ => Ok(()),
        }
    }

    /// Decides a publish: one per connection, both names given, then the key list, then one
    /// publisher per key, then the output.
    pub fn publish(&self, s: &Stream, st: PublishState) -> Result<(), Refusal> {
        if st.conn_busy {
            return Err(Refusal::Busy);
        }
        if s.app.is_empty() || s.name.is_empty() {
            return Err(Refusal::NoName(self.words));
        }
        if self.keys.as_ref().is_some_and(|k| !k.contains(&s.name)) {
            return Err(Refusal::KeyNotAccepted);
        }
        if st.key_live {
            return Err(Refusal::KeyLive);
        }
        if st.output_busy {
            return Err(Refusal::OutputBusy);
        }
        Ok(())
    }

    /// Decides a play (`conn_busy`: the connection already publishes or plays).
    pub fn play(&self, _s: &Stream, conn_busy: bool) -> Result<(), Refusal> {
        if !self.play {
            return Err(Refusal::NoPlay);
        }
        if conn_busy {
            return Err(Refusal::Busy);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay hub's parsing as `src/relay/hub.rs` had it before this module (`rtmp_events`,
    /// `query_param`), kept verbatim as the oracle the policy must match.
    mod hub_oracle {
        pub fn query_param(q: &str, key: &str) -> Option<String> {
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == key).then(|| v.to_string())
            })
        }

        /// (app, connect_query)
        pub fn connect(app: &str, tc_url: Option<&str>) -> (String, String) {
            let (a, q) = app.split_once('?').unwrap_or((app, ""));
            let app = a.trim_matches('/').to_string();
            let connect_query = if q.is_empty() {
                tc_url
                    .and_then(|t| t.split_once('?'))
                    .map(|(_, q)| q.to_string())
                    .unwrap_or_default()
            } else {
                q.to_string()
            };
            (app, connect_query)
        }

        /// (user password, channel password, refusal) of a publish.
        pub fn publish(
            app: &str,
            connect_query: &str,
            key: &str,
            query: &str,
            busy: bool,
        ) -> (String, Option<String>, Option<String>) {
            let pw = query_param(query, "user-password")
                .or_else(|| query_param(connect_query, "user-password"))
                .unwrap_or_default();
            let cpw =
                query_param(query, "password").or_else(|| query_param(connect_query, "password"));
            let res = if busy {
                Some("one publish or play per connection".to_string())
            } else if app.is_empty() || key.is_empty() {
                Some("publish to rtmp://HOST/<user>/<channel>".to_string())
            } else {
                None
            };
            (pw, cpw, res)
        }
    }

    const APPS: &[&str] = &[
        "",
        "/",
        "//",
        "live",
        "live/",
        "/live",
        "/live/",
        "//live//",
        "a/b",
        "/a/b/",
        "live?",
        "live?x=1",
        "/live/?x=1",
        "fier?user-password=123",
        "fier/?user-password=123&password=p",
        "?user-password=1",
        "a?b?c",
        "live /",
        "ü/",
    ];
    const TC_URLS: &[Option<&str>] = &[
        None,
        Some(""),
        Some("rtmp://h:1935/live"),
        Some("rtmp://h/fier?user-password=9"),
        Some("rtmp://h/x?password=t&user-password=8"),
        Some("rtmp://h/x?a?b"),
        Some("?"),
    ];
    const NAMES: &[(&str, &str)] = &[
        ("", ""),
        ("cam", ""),
        ("cam", "password=chpw"),
        ("cam", "user-password=7"),
        ("cam", "password"),
        ("cam", "password="),
        ("cam", "x=1&password=a=b&password=second"),
        ("a b", "user-password=&password=z"),
        ("", "user-password=1"),
    ];

    #[test]
    fn connect_parsing_matches_the_hub() {
        for app in APPS {
            for tc in TC_URLS {
                let c = Connect::parse(app, *tc);
                assert_eq!(
                    (c.app.clone(), c.query.clone()),
                    hub_oracle::connect(app, *tc),
                    "app {app:?} tcUrl {tc:?}"
                );
            }
        }
    }

    #[test]
    fn publish_names_parameters_and_refusals_match_the_hub() {
        let hub = Access::hub();
        for app in APPS {
            for tc in TC_URLS {
                let c = Connect::parse(app, *tc);
                for (name, query) in NAMES {
                    for busy in [false, true] {
                        let s = Stream::new(&c, name, query);
                        let (pw, cpw, res) =
                            hub_oracle::publish(&c.app, &c.query, name, query, busy);
                        assert_eq!(s.user_password(), pw, "{app:?} {tc:?} {name:?} {query:?}");
                        assert_eq!(s.channel_password(), cpw);
                        let st = PublishState {
                            conn_busy: busy,
                            ..PublishState::default()
                        };
                        let got = hub.publish(&s, st).err().map(|r| r.to_string());
                        assert_eq!(got, res, "{app:?} {name:?} busy {busy}");
                        assert_eq!((s.app.as_str(), s.name.as_str()), (c.app.as_str(), *name));
                    }
                }
            }
        }
    }

    #[test]
    fn the_app_is_trimmed_of_slashes_on_both_sides() {
        for a in [
            "live", "live/", "/live", "/live/", "//live//", "live?k=v", "/live/?k",
        ] {
            assert_eq!(Connect::parse(a, None).app, "live", "{a:?}");
        }
        assert_eq!(Connect::parse("/a/b/", None).app, "a/b");
        assert_eq!(Connect::parse("/", None).app, "");
    }

    #[test]
    fn the_connect_query_comes_from_app_then_tc_url() {
        // rtmp://HOST/fier?user-password=123/cam?password=chpw, as ffmpeg sends it.
        let c = Connect::parse(
            "fier?user-password=123",
            Some("rtmp://127.0.0.1:1935/fier?user-password=123"),
        );
        assert_eq!(c.app, "fier");
        assert_eq!(c.query, "user-password=123");
        let s = Stream::new(&c, "cam", "password=chpw");
        assert_eq!(s.user_password(), "123");
        assert_eq!(s.channel_password().as_deref(), Some("chpw"));
        // The app's query wins over tcUrl's; tcUrl's is used when the app has none.
        let c = Connect::parse("live?a=1", Some("rtmp://h/live?b=2"));
        assert_eq!(c.query, "a=1");
        let c = Connect::parse("live", Some("rtmp://h/live?b=2"));
        assert_eq!(c.query, "b=2");
        let c = Connect::parse("live?", Some("rtmp://h/live?b=2"));
        assert_eq!(c.query, "b=2");
        assert_eq!(Connect::parse("live", Some("rtmp://h/live")).query, "");
        assert_eq!(Connect::parse("live", None).query, "");
    }

    #[test]
    fn parameters_are_exact_first_match_and_undecoded() {
        assert_eq!(query_param("a=1&b=2", "b").as_deref(), Some("2"));
        assert_eq!(query_param("a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(query_param("a&b=2", "a").as_deref(), Some(""));
        assert_eq!(query_param("a=", "a").as_deref(), Some(""));
        assert_eq!(query_param("a=x=y", "a").as_deref(), Some("x=y"));
        assert_eq!(query_param("a=%41", "a").as_deref(), Some("%41"));
        assert_eq!(query_param("A=1", "a"), None);
        assert_eq!(query_param("ab=1", "a"), None);
        assert_eq!(query_param("", "a"), None);
        // The stream's query first, then the connect's.
        let c = Connect::parse("fier?user-password=1&password=c", None);
        let s = Stream::new(&c, "cam", "password=s");
        assert_eq!(s.channel_password().as_deref(), Some("s"));
        assert_eq!(s.user_password(), "1");
        let s = Stream::new(&c, "cam", "");
        assert_eq!(s.channel_password().as_deref(), Some("c"));
        let s = Stream::new(&Connect::parse("fier", None), "cam", "");
        assert_eq!(
            (s.user_password(), s.channel_password()),
            (String::new(), None)
        );
    }

    fn ingest(app: Option<&str>, keys: &[&str]) -> Access {
        let k = (!keys.is_empty()).then(|| keys.iter().map(|k| k.to_string()).collect());
        Access::ingest(app, k)
    }

    #[test]
    fn ingest_connect_checks_the_trimmed_app() {
        let a = ingest(Some("live"), &[]);
        for ok in ["live", "/live", "live/", "/live/", "live?x=1"] {
            assert_eq!(a.connect(&Connect::parse(ok, None)), Ok(()), "{ok:?}");
        }
        let e = a.connect(&Connect::parse("other", None)).unwrap_err();
        assert_eq!(e.to_string(), "unknown application \"other\"");
        assert!(a.connect(&Connect::parse("live/x", None)).is_err());
        // The configured app is trimmed too.
        let a = ingest(Some("/live/"), &[]);
        assert_eq!(a.app(), Some("live"));
        assert_eq!(a.connect(&Connect::parse("live", None)), Ok(()));
        // Without --app any application connects; the hub's connects are never refused.
        for app in APPS {
            let c = Connect::parse(app, None);
            assert_eq!(ingest(None, &[]).connect(&c), Ok(()));
            assert_eq!(Access::hub().connect(&c), Ok(()));
        }
    }

    #[test]
    fn ingest_publish_decisions_in_order() {
        let a = ingest(Some("live"), &["right", "other"]);
        assert_eq!(a.key_count(), Some(2));
        let c = Connect::parse("live", None);
        let s = |k: &str| Stream::new(&c, k, "");
        let free = PublishState::default();
        assert_eq!(a.publish(&s("right"), free), Ok(()));
        assert_eq!(a.publish(&s("wrong"), free), Err(Refusal::KeyNotAccepted));
        let e = a.publish(&s(""), free).unwrap_err();
        assert_eq!(e.to_string(), "publish to rtmp://HOST/<app>/<key>");
        let busy = PublishState {
            conn_busy: true,
            key_live: true,
            output_busy: true,
        };
        assert_eq!(a.publish(&s("wrong"), busy), Err(Refusal::Busy));
        let live = PublishState {
            key_live: true,
            output_busy: true,
            ..free
        };
        assert_eq!(a.publish(&s("wrong"), live), Err(Refusal::KeyNotAccepted));
        assert_eq!(a.publish(&s("right"), live), Err(Refusal::KeyLive));
        let out = PublishState {
            output_busy: true,
            ..free
        };
        assert_eq!(a.publish(&s("right"), out), Err(Refusal::OutputBusy));
        // Without keys any non-empty key is accepted.
        let any = ingest(None, &[]);
        assert_eq!(any.key_count(), None);
        assert_eq!(any.publish(&s("whatever"), free), Ok(()));
        assert!(matches!(any.publish(&s(""), free), Err(Refusal::NoName(_))));
        let none = Stream::new(&Connect::parse("/", None), "k", "");
        assert!(matches!(any.publish(&none, free), Err(Refusal::NoName(_))));
        // Texts the clients see (ffmpeg prints them; tests and users look for them).
        assert_eq!(
            Refusal::KeyNotAccepted.to_string(),
            "stream key not accepted"
        );
        assert!(Refusal::KeyLive.to_string().contains("already publishing"));
    }

    #[test]
    fn plays() {
        let c = Connect::parse("fier", None);
        let s = Stream::new(&c, "cam", "password=x");
        assert_eq!(Access::hub().play(&s, false), Ok(()));
        assert_eq!(Access::hub().play(&s, true), Err(Refusal::Busy));
        // The hub does not check play names: an empty one waits like any other.
        assert_eq!(Access::hub().play(&Stream::new(&c, "", ""), false), Ok(()));
        let i = ingest(None, &[]);
        assert_eq!(i.play(&s, false), Err(Refusal::NoPlay));
        assert_eq!(
            i.play(&s, false).unwrap_err().to_string(),
            "river-rtmp-in only accepts publishers"
        );
    }
}
