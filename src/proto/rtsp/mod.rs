//! RTSP 1.0 (RFC 2326) server side, sans-IO.
//!
//! - [`message`]: the push parser for requests and interleaved `$` frames on one TCP stream, and
//!   the response writer. Bounded: [`message::MAX_HEADER`], [`message::MAX_BODY`].
//! - [`transport`]: the `Transport` header (TCP interleaved, UDP unicast).
//! - [`auth`]: Basic and Digest (MD5) credentials and stateless expiring nonces.
//! - [`session`]: one connection's state machine (OPTIONS … TEARDOWN), which asks its [`Host`]
//!   (the hub) to authorize, describe, start recording or playing, and reports interleaved media as
//!   events. Time is an input; it never touches a socket.
//!
//! [`Host`]: session::Host

pub mod auth;
pub mod message;
pub mod session;
pub mod transport;

pub use auth::{Authenticator, Credentials};
pub use message::{Message, Method, ParseError, Reader, Request, Response};
pub use session::{Access, AuthVerdict, Event, Host, RtpInfo, Session, SessionConfig, StreamSetup};
pub use transport::{Lower, Transport};
