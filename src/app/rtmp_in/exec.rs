//! river-rtmp-in's `--exec` children: one per accepted publish, with that publish's FLV on its
//! stdin through a non-blocking pipe on the reactor, and its end: stdin closed once the rest is
//! written, SIGTERM 2 s later, SIGKILL only 10 s after that, always reaped. Nothing here blocks:
//! the reactor calls [`ExecChild::step`] at the instant it returns.

use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::unix::pipe::Sender;
use mio::{Interest, Registry, Token};

use super::mask;
use crate::net::Outbox;
use crate::proto::rtmp::FlvSplice;

/// After a publish ends, how long an --exec child may take to exit on its own (stdin closed);
/// also how long it may read nothing of the rest of its input before its stdin is closed anyway.
pub const EXEC_GRACE: Duration = Duration::from_secs(2);
/// How long it then has after SIGTERM before SIGKILL.
pub const EXEC_TERM_WAIT: Duration = Duration::from_secs(10);
/// How often an ending child is checked for its exit.
const REAP_POLL: Duration = Duration::from_millis(20);

enum Phase {
    /// Its publish is on.
    Feeding,
    /// The publish ended: the rest of the input is being written.
    Draining,
    /// stdin closed at `since`.
    Closed { since: Instant },
    /// SIGTERM sent at `since`.
    Termed { since: Instant },
    /// SIGKILL sent.
    Killed,
    /// Reaped.
    Done,
}

/// One `--exec` child and the FLV on its way to it.
pub struct ExecChild {
    child: Child,
    pid: libc::pid_t,
    stdin: Option<Sender>,
    /// The publish's FLV writer.
    pub flv: FlvSplice,
    /// FLV not yet taken by the pipe (unbounded here: the caller stops reading the publisher while
    /// [`ExecChild::backlog`] is over its mark).
    out: Outbox,
    key: String,
    /// The child stopped reading (EPIPE): the rest of this publish is dropped.
    broken: bool,
    /// The last write progress.
    progress: Instant,
    phase: Phase,
}

impl ExecChild {
    /// Runs `cmd` with `sh -c` in a process group of its own, its stdin a non-blocking pipe
    /// registered for writable events on `token`.
    pub fn spawn(
        cmd: &str,
        app: &str,
        key: &str,
        peer: SocketAddr,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> io::Result<ExecChild> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("RIVER_APP", app)
            .env("RIVER_KEY", key)
            .env("RIVER_REMOTE_ADDR", peer.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Its own process group: SIGTERM reaches the whole pipeline it may run, and a Ctrl-C
            // on the terminal reaches river first, which then ends the children in order.
            .process_group(0)
            .spawn()?;
        let pid = child.id() as libc::pid_t;
        let stdin = child.stdin.take().map(Sender::from);
        let setup = |s: Option<Sender>| -> io::Result<Sender> {
            let mut s = s.ok_or_else(|| io::Error::other("no stdin pipe"))?;
            s.set_nonblocking(true)?;
            registry.register(&mut s, token, Interest::WRITABLE)?;
            Ok(s)
        };
        let stdin = match setup(stdin) {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: kill(2) on the child's own process group; then reaped.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = child.wait();
                return Err(e);
            }
        };
        let mut flv = FlvSplice::new();
        flv.begin();
        Ok(ExecChild {
            child,
            pid,
            stdin: Some(stdin),
            flv,
            out: Outbox::new(usize::MAX),
            key: key.to_string(),
            broken: false,
            progress: now,
            phase: Phase::Feeding,
        })
    }

    /// Bytes waiting for the child to read them.
    pub fn backlog(&self) -> usize {
        self.out.queued()
    }

    /// Moves what the FLV writer produced to the queue and writes what the pipe takes.
    pub fn pump(&mut self, now: Instant) {
        let data = self.flv.take();
        if !self.broken && self.stdin.is_some() && !data.is_empty() {
            self.out.push_always(Bytes::from(data));
        }
        self.write(now);
    }

    /// Writes what the pipe takes (after a writable event, or new data).
    pub fn write(&mut self, now: Instant) {
        if self.broken || self.out.is_empty() {
            return;
        }
        let Some(w) = self.stdin.as_mut() else {
            return;
        };
        match self.out.write_to(w) {
            Ok(r) => {
                if r.bytes > 0 {
                    self.progress = now;
                }
            }
            Err(e) => {
                self.broken = true;
                self.out.clear();
                log::warn!(
                    "exec child {} (key {}) stopped reading its stdin ({e}); this publish's data is dropped",
                    self.pid,
                    mask(&self.key)
                );
            }
        }
    }

    /// The publish ended: the rest of the FLV is queued, and [`step`](Self::step) takes the
    /// child to its end.
    pub fn end(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Feeding) {
            return;
        }
        self.flv.end();
        self.progress = now;
        self.pump(now);
        self.phase = Phase::Draining;
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    fn close_stdin(&mut self, registry: &Registry) {
        if let Some(mut s) = self.stdin.take() {
            let _ = registry.deregister(&mut s);
        }
    }

    /// True once the child has exited (and is reaped).
    fn reaped(&mut self) -> bool {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                log::info!(
                    "exec child {} (key {}) ended: {status}",
                    self.pid,
                    mask(&self.key)
                );
                true
            }
            Ok(None) => false,
            Err(e) => {
                log::warn!("exec child {}: cannot wait for it: {e}", self.pid);
                true
            }
        }
    }

    /// Takes an ending child as far as it goes at `now`: writes the rest of its input, closes
    /// its stdin once that is written (or once it has read nothing for [`EXEC_GRACE`]), sends
    /// SIGTERM [`EXEC_GRACE`] later, SIGKILL [`EXEC_TERM_WAIT`] after that, and reaps it. Returns
    /// when to call again (`None`: the publish is still on, or the child is reaped).
    pub fn step(&mut self, registry: &Registry, now: Instant) -> Option<Instant> {
        loop {
            match self.phase {
                Phase::Feeding | Phase::Done => return None,
                Phase::Draining => {
                    self.write(now);
                    if self.broken || self.out.is_empty() || self.stdin.is_none() {
                        self.close_stdin(registry);
                        self.phase = Phase::Closed { since: now };
                        continue;
                    }
                    let give_up = self.progress + EXEC_GRACE;
                    if now < give_up {
                        return Some(give_up);
                    }
                    log::warn!(
                        "exec child {} (key {}) read nothing for {EXEC_GRACE:?} after its publish ended; {} bytes of its input dropped",
                        self.pid,
                        mask(&self.key),
                        self.out.queued()
                    );
                    self.out.clear();
                    self.close_stdin(registry);
                    self.phase = Phase::Closed { since: now };
                }
                Phase::Closed { since } => {
                    if self.reaped() {
                        self.phase = Phase::Done;
                        continue;
                    }
                    let term = since + EXEC_GRACE;
                    if now < term {
                        return Some((now + REAP_POLL).min(term));
                    }
                    log::info!("exec child {}: SIGTERM", self.pid);
                    // SAFETY: kill(2) on the child's own process group.
                    unsafe { libc::kill(-self.pid, libc::SIGTERM) };
                    self.phase = Phase::Termed { since: now };
                }
                Phase::Termed { since } => {
                    if self.reaped() {
                        self.phase = Phase::Done;
                        continue;
                    }
                    let kill = since + EXEC_TERM_WAIT;
                    if now < kill {
                        return Some((now + REAP_POLL).min(kill));
                    }
                    log::warn!(
                        "exec child {} ignored SIGTERM for {EXEC_TERM_WAIT:?}; SIGKILL",
                        self.pid
                    );
                    // SAFETY: as above.
                    unsafe { libc::kill(-self.pid, libc::SIGKILL) };
                    self.phase = Phase::Killed;
                }
                Phase::Killed => {
                    if self.reaped() {
                        self.phase = Phase::Done;
                        continue;
                    }
                    return Some(now + REAP_POLL);
                }
            }
        }
    }
}

impl Drop for ExecChild {
    /// Only on an early exit (an error of the reactor): a child not reaped is killed and reaped
    /// rather than left behind.
    fn drop(&mut self) {
        if !self.is_done() {
            // SAFETY: kill(2) on the child's own process group.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}
