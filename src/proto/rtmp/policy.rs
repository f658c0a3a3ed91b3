//! The RTMP publish/play policy that river-rtmp-in and the relay hub share: what a `connect`, a
//! `publish` and a `play` name, and whether a server accepts them. Pure: the fields of
//! [`ServerEvent`](super::ServerEvent)s and facts about the server's state go in, names and
//! decisions come out; no sockets, no clock.
//!
//! The rules (the relay hub's, which river-rtmp-in follows too):
//! - The application is the connect's `app` up to its first `?`, trimmed of `/` on both sides
//!   (`/live/` is `live`).
//! - The connect query is what follows that `?`; when `app` has none (or an empty one), what
//!   follows the first `?` of `tcUrl`. Encoders put a password there:
//!   `rtmp://HOST/fier?user-password=123/cam`.
//! - A publish or play names its stream with the name up to the first `?`; its query (after the
//!   `?`) is searched for a parameter first, then the connect query.
//! - A parameter is `key=value` between `&`s, the key matched exactly as sent; a key without `=`
//!   has the empty value. Passwords are percent-decoded once and checked; an empty one is none.
//! - The application and the stream name are names: percent-decoded once, then checked against
//!   the one rule of [`crate::proto::names`] (`a%2Fb` is `a/b`, refused). An empty one is
//!   refused as missing.
//! - A connection publishes or plays once.
//!
//! [`Access`] holds what a server restricts on top: river-rtmp-in's `--app` and `--key`/`--keys`
//! (the hub checks its users itself, before [`Access::publish`]).

use std::collections::HashSet;
use std::fmt;

use crate::proto::names::{self, NameError, PasswordError};

/// What a `connect` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connect {
    /// The application as sent: `app` without its query, trimmed of `/` on both sides.
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

/// A publish or play: the application of its connect, the stream name and both queries, as sent.
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

/// The two names of a publish or play, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub app: String,
    pub name: String,
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

    /// A parameter as sent, from the stream name's query, else from the connect query.
    pub fn param(&self, key: &str) -> Option<&str> {
        names::query_value(&self.query, key)
            .or_else(|| names::query_value(&self.connect_query, key))
    }

    /// A password parameter, decoded and checked; `None` when absent or empty.
    fn password(&self, key: &str) -> Option<Result<String, PasswordError>> {
        let p = names::decode_password(self.param(key)?);
        p.as_ref().map_or(true, |p| !p.is_empty()).then_some(p)
    }

    /// The hub's `user-password` (empty when absent).
    pub fn user_password(&self) -> Result<String, PasswordError> {
        self.password("user-password").unwrap_or(Ok(String::new()))
    }

    /// The hub's channel password, `password` (a publisher sets it, players must match it);
    /// `None` when absent or empty.
    pub fn channel_password(&self) -> Option<Result<String, PasswordError>> {
        self.password("password")
    }

    /// The application and the stream name, decoded and checked (`words` name them in the
    /// refusal).
    pub fn names(&self, words: Words) -> Result<Names, Refusal> {
        let check = |raw: &str, what: &str, secret: bool| {
            names::decode_name(raw).map_err(|e| match e.err {
                NameError::Empty => Refusal::NoName(words),
                _ if secret => Refusal::BadName(e.message_hidden(what)),
                _ => Refusal::BadName(e.message(what)),
            })
        };
        Ok(Names {
            app: check(&self.app, words.app, false)?,
            name: check(&self.name, words.name, words.secret_name)?,
        })
    }

    /// `app/name` for a log line: plain when both names are good, escaped and cut otherwise.
    pub fn label(&self) -> String {
        match self.names(HUB_WORDS) {
            Ok(n) => format!("{}/{}", n.app, n.name),
            Err(_) => names::shown(format!("{}/{}", self.app, self.name).as_bytes()),
        }
    }
}

/// What a server calls the two names in its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    pub app: &'static str,
    pub name: &'static str,
    /// The stream name is a secret: refusals do not show it.
    pub secret_name: bool,
}

/// The relay hub's words: `rtmp://HOST/<user>/<channel>`.
pub const HUB_WORDS: Words = Words {
    app: "user",
    name: "channel",
    secret_name: false,
};
/// river-rtmp-in's words: `rtmp://HOST/<app>/<key>`; a key is never shown in full.
pub const INGEST_WORDS: Words = Words {
    app: "app",
    name: "key",
    secret_name: true,
};

/// Why a connect, publish or play is refused. `Display` gives the description sent to the client
/// (in the `_error` or `onStatus`) and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The connection already publishes or plays.
    Busy,
    /// The application or the stream name is empty.
    NoName(Words),
    /// The application or the stream name breaks the name rule: the whole message.
    BadName(String),
    /// The application is not the one the server serves (as shown: escaped and cut).
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
            Refusal::BadName(m) => f.write_str(m),
            Refusal::UnknownApp(a) => write!(f, "unknown application {a}"),
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
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishState<'a> {
    /// This connection already publishes or plays.
    pub conn_busy: bool,
    /// The keys other connections publish now (river-rtmp-in: one publisher per key).
    pub live_keys: Option<&'a HashSet<String>>,
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
    /// The relay hub's: any application and name that follow the name rule (it checks the
    /// user's password itself, first), players served.
    pub fn hub() -> Access {
        Access {
            app: None,
            keys: None,
            play: true,
            words: HUB_WORDS,
        }
    }

    /// river-rtmp-in's: only `app` when given (trimmed of `/` like a connect's), only `keys` when
    /// given, no players. The caller has checked that `app` and `keys` follow the name rule.
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

    /// Decides a connect: the application (decoded once) must be the server's, when it has one.
    pub fn connect(&self, c: &Connect) -> Result<(), Refusal> {
        match &self.app {
            Some(want) if names::decode_name(&c.app).ok().as_ref() != Some(want) => {
                Err(Refusal::UnknownApp(names::shown(c.app.as_bytes())))
            }
            _ => Ok(()),
        }
    }

    /// Decides a publish: one per connection; then the key list (a key that does not decode is
    /// not on it), so a client without a listed key learns nothing more; then both names; then
    /// one publisher per key; then the output.
    pub fn publish(&self, s: &Stream, st: PublishState<'_>) -> Result<Names, Refusal> {
        if st.conn_busy {
            return Err(Refusal::Busy);
        }
        if let Some(keys) = &self.keys {
            if !names::decode_name(&s.name).is_ok_and(|k| keys.contains(&k)) {
                return Err(Refusal::KeyNotAccepted);
            }
        }
        let n = s.names(self.words)?;
        if st.live_keys.is_some_and(|l| l.contains(&n.name)) {
            return Err(Refusal::KeyLive);
        }
        if st.output_busy {
            return Err(Refusal::OutputBusy);
        }
        Ok(n)
    }

    /// Decides a play (`conn_busy`: the connection already publishes or plays): the names of
    /// what it plays.
    pub fn play(&self, s: &Stream, conn_busy: bool) -> Result<Names, Refusal> {
        if !self.play {
            return Err(Refusal::NoPlay);
        }
        if conn_busy {
            return Err(Refusal::Busy);
        }
        s.names(self.words).map_err(|r| match r {
            Refusal::NoName(w) => {
                Refusal::BadName(format!("play rtmp://HOST/<{}>/<{}>", w.app, w.name))
            }
            r => r,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.user_password(), Ok("123".into()));
        assert_eq!(s.channel_password(), Some(Ok("chpw".into())));
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
    fn parameters_are_first_match_and_passwords_decoded_once() {
        // The stream's query first, then the connect's.
        let c = Connect::parse("fier?user-password=1&password=c", None);
        let s = Stream::new(&c, "cam", "password=s");
        assert_eq!(s.channel_password(), Some(Ok("s".into())));
        assert_eq!(s.user_password(), Ok("1".into()));
        let s = Stream::new(&c, "cam", "");
        assert_eq!(s.channel_password(), Some(Ok("c".into())));
        let s = Stream::new(&Connect::parse("fier", None), "cam", "");
        assert_eq!(
            (s.user_password(), s.channel_password()),
            (Ok(String::new()), None)
        );
        // Decoded once; '+' is a plus; empty is none; malformed is refused.
        let s = Stream::new(&c, "cam", "user-password=a%26b+c&password=");
        assert_eq!(s.user_password(), Ok("a&b+c".into()));
        assert_eq!(s.channel_password(), None);
        let s = Stream::new(&c, "cam", "user-password=50%off&password=%0A");
        assert_eq!(s.user_password(), Err(PasswordError::BadEscape(2)));
        assert_eq!(s.channel_password(), Some(Err(PasswordError::Control(0))));
        assert_eq!(s.param("password"), Some("%0A"));
    }

    #[test]
    fn names_are_decoded_once_then_checked() {
        let n = |app: &str, name: &str| Stream::new(&Connect::parse(app, None), name, "");
        let ok = n("f%69er", "%63am").names(HUB_WORDS).unwrap();
        assert_eq!((ok.app.as_str(), ok.name.as_str()), ("fier", "cam"));
        for (app, name, want) in [
            (
                "fier",
                "a%2Fb",
                "channel name \"a/b\" is not allowed: '/' at byte 1",
            ),
            (
                "fier",
                "..",
                "channel name \"..\" is not allowed: it starts with '.'",
            ),
            ("fier", "a\u{1}b", "'\\u{1}' at byte 1"),
            ("fier", "a%zz", "malformed percent escape at byte 1"),
            (
                "a/b",
                "cam",
                "user name \"a/b\" is not allowed: '/' at byte 1",
            ),
            ("fier", &"x".repeat(4096), "4096 bytes long"),
        ] {
            let e = n(app, name).names(HUB_WORDS).unwrap_err();
            assert!(
                matches!(&e, Refusal::BadName(m) if m.contains(want)),
                "{app} {name}: {e}"
            );
        }
        assert_eq!(
            n("fier", "").names(HUB_WORDS),
            Err(Refusal::NoName(HUB_WORDS))
        );
        assert_eq!(
            n("/", "k").names(INGEST_WORDS).unwrap_err().to_string(),
            "publish to rtmp://HOST/<app>/<key>"
        );
        assert_eq!(n("fier", "cam").label(), "fier/cam");
        assert_eq!(n("fier", "a\nb").label(), "\"fier/a\\nb\"");
    }

    fn ingest(app: Option<&str>, keys: &[&str]) -> Access {
        let k = (!keys.is_empty()).then(|| keys.iter().map(|k| k.to_string()).collect());
        Access::ingest(app, k)
    }

    #[test]
    fn ingest_connect_checks_the_trimmed_decoded_app() {
        let a = ingest(Some("live"), &[]);
        for ok in ["live", "/live", "live/", "/live/", "live?x=1", "l%69ve"] {
            assert_eq!(a.connect(&Connect::parse(ok, None)), Ok(()), "{ok:?}");
        }
        let e = a.connect(&Connect::parse("other", None)).unwrap_err();
        assert_eq!(e.to_string(), "unknown application \"other\"");
        assert!(a.connect(&Connect::parse("live/x", None)).is_err());
        assert!(a.connect(&Connect::parse("live%", None)).is_err());
        let e = a.connect(&Connect::parse("a\nb", None)).unwrap_err();
        assert_eq!(e.to_string(), "unknown application \"a\\nb\"");
        // The configured app is trimmed too.
        let a = ingest(Some("/live/"), &[]);
        assert_eq!(a.app(), Some("live"));
        assert_eq!(a.connect(&Connect::parse("live", None)), Ok(()));
        // Without --app any application connects (its name is checked at publish); the hub's
        // connects are never refused.
        for app in ["", "/", "a/b", "..", "ü"] {
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
        let n = a.publish(&s("right"), free).unwrap();
        assert_eq!((n.app.as_str(), n.name.as_str()), ("live", "right"));
        assert_eq!(a.publish(&s("r%69ght"), free).unwrap().name, "right");
        assert_eq!(a.publish(&s("wrong"), free), Err(Refusal::KeyNotAccepted));
        // With a key list a bad or empty key is just not on it.
        for k in ["", "../x", "a%2Fb", "%FF"] {
            assert_eq!(
                a.publish(&s(k), free),
                Err(Refusal::KeyNotAccepted),
                "{k:?}"
            );
        }
        let live: HashSet<String> = ["right".to_string()].into();
        let busy = PublishState {
            conn_busy: true,
            live_keys: Some(&live),
            output_busy: true,
        };
        assert_eq!(a.publish(&s("wrong"), busy), Err(Refusal::Busy));
        let on = PublishState {
            live_keys: Some(&live),
            output_busy: true,
            ..free
        };
        assert_eq!(a.publish(&s("wrong"), on), Err(Refusal::KeyNotAccepted));
        assert_eq!(a.publish(&s("right"), on), Err(Refusal::KeyLive));
        let out = PublishState {
            output_busy: true,
            ..free
        };
        assert_eq!(a.publish(&s("right"), out), Err(Refusal::OutputBusy));
        // Without keys any key that follows the name rule is accepted.
        let any = ingest(None, &[]);
        assert_eq!(any.key_count(), None);
        assert!(any.publish(&s("whatever"), free).is_ok());
        assert!(matches!(any.publish(&s(""), free), Err(Refusal::NoName(_))));
        for k in [
            "..",
            "../x",
            "a%2Fb",
            "-rf",
            "a b",
            "$(reboot)",
            "%FF",
            "secret!",
        ] {
            let e = any.publish(&s(k), free).unwrap_err();
            assert!(
                matches!(&e, Refusal::BadName(m) if m.starts_with("key is not allowed: ")),
                "{k}: {e}"
            );
            assert!(
                !e.to_string().contains("secret"),
                "the key is not shown: {e}"
            );
        }
        let bad_app = Stream::new(&Connect::parse("a%2Fb", None), "k", "");
        let e = any.publish(&bad_app, free).unwrap_err();
        assert!(e.to_string().starts_with("app name \"a/b\""), "{e}");
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
        assert_eq!(Access::hub().play(&s, false).unwrap().name, "cam");
        assert_eq!(Access::hub().play(&s, true), Err(Refusal::Busy));
        assert!(matches!(
            Access::hub().play(&Stream::new(&c, "a%2Fb", ""), false),
            Err(Refusal::BadName(_))
        ));
        assert_eq!(
            Access::hub()
                .play(&Stream::new(&c, "", ""), false)
                .unwrap_err()
                .to_string(),
            "play rtmp://HOST/<user>/<channel>"
        );
        let i = ingest(None, &[]);
        assert_eq!(i.play(&s, false), Err(Refusal::NoPlay));
        assert_eq!(
            i.play(&s, false).unwrap_err().to_string(),
            "river-rtmp-in only accepts publishers"
        );
    }
}
