//! The HTTP front: a request head (bounded, with a deadline), then a watch (http-flv/http-ts), a
//! push (chunked, sized, or HTTP/1.0 until EOF), `/stats` (JSON) or `/metrics` (Prometheus).
//! One request per connection: a watch streams until the end of the broadcast, every other
//! answer closes.

use std::time::{Duration, Instant};

use super::super::channel::{key_str, SubKind};
use super::super::http::{self, ChunkedDecoder, Head, Route};
use super::super::hub::{c_peer, Hub, State};
use super::fstream::{Body, Publisher};

/// Deadline for an HTTP request head.
pub(in crate::relay) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A new HTTP connection: the request head has its deadline.
pub(in crate::relay) fn new_conn(now: Instant) -> State {
    State::HttpHead {
        buf: Vec::new(),
        deadline: now + HEAD_TIMEOUT,
    }
}

impl Hub {
    /// Bytes of a request head (and whatever follows it).
    pub(in crate::relay) fn on_http_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        let State::HttpHead { buf, .. } = &mut c.state else {
            return;
        };
        let room = http::MAX_HEAD + 1 - buf.len().min(http::MAX_HEAD + 1);
        let take = data.len().min(room);
        buf.extend_from_slice(&data[..take]);
        match http::parse_head(buf) {
            Ok(None) => {}
            Ok(Some((head, len))) => {
                let mut rest = buf[len..].to_vec();
                rest.extend_from_slice(&data[take..]);
                self.on_http_request(idx, head, &rest, now);
            }
            Err(e) => {
                let r = http::error_response(e.status, &e.message);
                self.refuse(idx, &format!("HTTP {}: {}", e.status, e.message), Some(r));
            }
        }
    }

    fn on_http_request(&mut self, idx: usize, head: Head, rest: &[u8], now: Instant) {
        let head_only = head.method == "HEAD";
        let route = http::route(&head);
        let peer = c_peer(&self.conns[idx]);
        log::debug!("{peer}: {} {}", head.method, head.path);
        match (head.method.as_str(), route) {
            ("OPTIONS", _) => {
                let methods = "GET, HEAD, POST, PUT, OPTIONS";
                let r = http::response_head(
                    204,
                    &[
                        ("Allow", methods),
                        ("Access-Control-Allow-Methods", methods),
                        ("Access-Control-Allow-Headers", "*"),
                    ],
                    Some(0),
                );
                self.respond_and_close(idx, r);
            }
            ("GET" | "HEAD", Route::Stats { prometheus }) => {
                let s = self.stats(now);
                let (ct, body) = if prometheus {
                    (
                        "text/plain; version=0.0.4; charset=utf-8",
                        s.to_prometheus(),
                    )
                } else {
                    ("application/json", s.to_json())
                };
                let r = http::text_response(200, ct, &body, head_only);
                self.respond_and_close(idx, r);
            }
            ("GET" | "HEAD", Route::Stream { user, channel, ext }) => {
                let Some(ext) = ext else {
                    let r = http::error_response(404, "ask for /<user>/<channel>.flv or .ts");
                    self.refuse(idx, "HTTP GET without .flv or .ts", Some(r));
                    return;
                };
                if head_only {
                    let r = http::response_head(200, &[("Content-Type", ext.content_type())], None);
                    self.respond_and_close(idx, r);
                    return;
                }
                let pw = head.param("password").map(str::to_string);
                self.start_watcher(idx, (user, channel), pw, SubKind::Http(ext), now);
            }
            ("POST" | "PUT", Route::Stream { user, channel, .. }) => {
                self.on_http_push(idx, (user, channel), &head, rest, now)
            }
            (_, Route::NotFound) => {
                let r = http::error_response(404, "no such path");
                self.refuse(idx, &format!("HTTP 404 {}", head.path), Some(r));
            }
            (m, _) => {
                let r = http::error_response(405, &format!("method {m} not allowed here"));
                self.refuse(idx, &format!("HTTP 405 {m}"), Some(r));
            }
        }
    }

    /// A push: the user's password checked, then the body is the broadcast.
    fn on_http_push(
        &mut self,
        idx: usize,
        key: (String, String),
        head: &Head,
        rest: &[u8],
        now: Instant,
    ) {
        let pw = head
            .param("user-password")
            .or_else(|| head.param("password"))
            .unwrap_or("")
            .to_string();
        if let Err(why) = self.check_user(&key.0, &pw) {
            let r = http::error_response(403, "wrong user password or unknown user");
            let why = format!("HTTP broadcaster for {}: {why}", key_str(&key));
            self.refuse(idx, &why, Some(r));
            return;
        }
        let body = if head.chunked {
            Body::Chunked(ChunkedDecoder::new())
        } else if let Some(n) = head.content_length {
            Body::Length(n)
        } else if head.version == 0 {
            Body::Raw
        } else {
            let r = http::error_response(411, "a push needs a chunked or Content-Length body");
            self.refuse(idx, "HTTP push without a body length", Some(r));
            return;
        };
        let cpw = head.param("channel-password").map(str::to_string);
        let empty = matches!(body, Body::Length(0));
        let publisher = Publisher {
            key: key.clone(),
            body,
            http: true,
        };
        self.start_broadcast(idx, key.clone(), cpw, publisher, now);
        if empty {
            self.end_broadcast(&key, now, "empty push");
            self.respond_and_close(idx, http::response_head(200, &[], Some(0)));
        } else if !rest.is_empty() {
            self.on_publisher_data(idx, rest, now);
        }
    }
}
