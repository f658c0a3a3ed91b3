//! river-rtmp-in: a listener, one thread per connection driving a [`ServerSession`], and the FLV
//! writer that splices publishes into one stream.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::RtmpIn;
use crate::proto::rtmp::{FlvSplice, ServerConfig, ServerEvent, ServerSession};
use crate::stdio::{require_binary_stdout, stop_signal, UsageError};

/// How often blocking reads wake up to look at the stop flags.
const POLL: Duration = Duration::from_millis(200);
/// After a publish ends, how long an --exec child may take to exit on its own (stdin closed).
const EXEC_GRACE: Duration = Duration::from_secs(2);
/// How long it then has after SIGTERM before SIGKILL.
const EXEC_TERM_WAIT: Duration = Duration::from_secs(10);

/// A key as it may appear in logs: never in full.
pub(crate) fn mask(key: &str) -> String {
    let n = key.chars().count();
    if n <= 4 {
        format!("****({n} chars)")
    } else {
        let head: String = key.chars().take(2).collect();
        format!("{head}…({n} chars)")
    }
}

/// Where a publish goes.
enum Sink {
    /// The shared stdout stream.
    Stdout,
    /// An --exec child.
    Exec(Box<ExecChild>),
}

struct ExecChild {
    child: Child,
    stdin: Option<ChildStdin>,
    flv: FlvSplice,
    key: String,
    broken: bool,
}

impl ExecChild {
    fn spawn(cmd: &str, app: &str, key: &str, peer: SocketAddr) -> io::Result<ExecChild> {
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
        let stdin = child.stdin.take();
        let mut flv = FlvSplice::new();
        flv.begin();
        Ok(ExecChild {
            child,
            stdin,
            flv,
            key: key.to_string(),
            broken: false,
        })
    }

    fn flush(&mut self) {
        let data = self.flv.take();
        if self.broken || data.is_empty() {
            return;
        }
        if let Some(w) = self.stdin.as_mut() {
            if let Err(e) = w.write_all(&data) {
                self.broken = true;
                log::warn!(
                    "exec child {} (key {}) stopped reading its stdin ({e}); this publish's data is dropped",
                    self.child.id(),
                    mask(&self.key)
                );
            }
        }
    }

    /// Closes stdin, waits a little, then SIGTERM, then (only if ignored) SIGKILL; always reaps.
    fn end(mut self) {
        self.flv.end();
        self.flush();
        drop(self.stdin.take());
        let pid = self.child.id() as libc::pid_t;
        let exited = |c: &mut Child, d: Duration| {
            let t = Instant::now();
            loop {
                match c.try_wait() {
                    Ok(Some(s)) => return Some(s),
                    Ok(None) if t.elapsed() < d => std::thread::sleep(Duration::from_millis(20)),
                    _ => return None,
                }
            }
        };
        let status = match exited(&mut self.child, EXEC_GRACE) {
            Some(s) => s,
            None => {
                log::info!("exec child {pid}: SIGTERM");
                // SAFETY: kill(2) on the child's own process group.
                unsafe { libc::kill(-pid, libc::SIGTERM) };
                match exited(&mut self.child, EXEC_TERM_WAIT) {
                    Some(s) => s,
                    None => {
                        log::warn!(
                            "exec child {pid} ignored SIGTERM for {EXEC_TERM_WAIT:?}; SIGKILL"
                        );
                        // SAFETY: as above.
                        unsafe { libc::kill(-pid, libc::SIGKILL) };
                        match self.child.wait() {
                            Ok(s) => s,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
        log::info!("exec child {pid} (key {}) ended: {status}", mask(&self.key));
    }
}

struct Settings {
    app: Option<String>,
    keys: Option<HashSet<String>>,
    exec: Option<String>,
    persist: bool,
    cfg: ServerConfig,
}

#[derive(Default)]
struct State {
    active_keys: HashSet<String>,
    stdout_busy: bool,
}

struct Shared {
    settings: Settings,
    state: Mutex<State>,
    stdout: Mutex<FlvSplice>,
    /// Without --persist: the one publish has ended.
    done: AtomicBool,
    stopping: AtomicBool,
    fatal: Mutex<Option<io::Error>>,
}

impl Shared {
    fn write_stdout(&self, flv: &mut FlvSplice) {
        let data = flv.take();
        if data.is_empty() {
            return;
        }
        let mut so = io::stdout().lock();
        if let Err(e) = so.write_all(&data).and_then(|_| so.flush()) {
            let mut f = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
            if f.is_none() {
                *f = Some(e);
            }
            self.stopping.store(true, Ordering::SeqCst);
        }
    }
}

fn load_keys(args: &RtmpIn) -> anyhow::Result<Option<HashSet<String>>> {
    let mut keys = HashSet::new();
    let mut any = false;
    if let Some(k) = &args.key {
        if k.is_empty() {
            return Err(UsageError("--key (or RIVER_RTMP_KEY) is empty".into()).into());
        }
        keys.insert(k.clone());
        any = true;
    }
    if let Some(p) = &args.keys {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading the keys file {}", p.display()))?;
        for line in text.lines() {
            let l = line.trim();
            if !l.is_empty() && !l.starts_with('#') {
                keys.insert(l.to_string());
            }
        }
        if keys.is_empty() {
            return Err(UsageError(format!("the keys file {} lists no key", p.display())).into());
        }
        any = true;
    }
    Ok(any.then_some(keys))
}

/// Runs river-rtmp-in.
pub fn rtmp_in(args: RtmpIn) -> anyhow::Result<()> {
    if args.exec.is_none() {
        require_binary_stdout("FLV")?;
    }
    let keys = load_keys(&args)?;
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    eprintln!(
        "river-rtmp-in: listening on rtmp://{bound}/{}",
        args.app.as_deref().unwrap_or("<app>")
    );
    match &keys {
        None => log::warn!("no --key/--keys: any stream key is accepted"),
        Some(k) => log::info!("{} stream key(s) accepted", k.len()),
    }
    let shared = Arc::new(Shared {
        settings: Settings {
            app: args.app.clone(),
            keys,
            exec: args.exec.clone(),
            persist: args.persist,
            cfg: ServerConfig::default(),
        },
        state: Mutex::new(State::default()),
        stdout: Mutex::new(FlvSplice::new()),
        done: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        fatal: Mutex::new(None),
    });
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    loop {
        if stop_signal().is_some()
            || shared.done.load(Ordering::SeqCst)
            || shared.stopping.load(Ordering::SeqCst)
        {
            break;
        }
        match listener.accept() {
            Ok((sock, peer)) => {
                let sh = shared.clone();
                threads.retain(|t| !t.is_finished());
                match std::thread::Builder::new()
                    .name(format!("rtmp {peer}"))
                    .spawn(move || connection(sock, peer, &sh))
                {
                    Ok(t) => threads.push(t),
                    Err(e) => log::warn!("{peer}: cannot start a thread for the connection: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("accept on {bound}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    drop(listener);
    shared.stopping.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    if let Some(e) = shared
        .fatal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(anyhow::Error::new(e).context("writing FLV to stdout"));
    }
    Ok(())
}

/// The publish a connection holds.
struct Active {
    stream_id: u32,
    key: String,
    sink: Sink,
}

fn connection(mut sock: TcpStream, peer: SocketAddr, sh: &Shared) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(POLL));
    let _ = sock.set_write_timeout(Some(Duration::from_secs(10)));
    log::debug!("{peer}: connected");
    let mut s = ServerSession::new(
        sh.settings.cfg,
        Instant::now(),
        crate::proto::util::random_u64(),
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut active: Option<Active> = None;
    let mut app = String::new();
    let reason: String = loop {
        // Send what the session produced (answers, handshake).
        let out = s.take_output();
        if !out.is_empty() {
            if let Err(e) = sock.write_all(&out) {
                break format!("write: {e}");
            }
        }
        if s.should_close() {
            break "closed by the server".into();
        }
        if stop_signal().is_some() || sh.stopping.load(Ordering::SeqCst) {
            break "shutting down".into();
        }
        let now = Instant::now();
        let r = match sock.read(&mut buf) {
            Ok(0) => break "the peer closed the connection".into(),
            Ok(n) => s.push(&buf[..n], now),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                s.handle_timeout(now)
            }
            Err(e) => break format!("read: {e}"),
        };
        let failed = r.err();
        while let Some(ev) = s.poll_event() {
            event(&mut s, ev, peer, sh, &mut active, &mut app);
        }
        flush_active(sh, &mut active);
        if let Some(e) = failed {
            log::warn!("{peer}: {e}");
            break "protocol error".into();
        }
    };
    let _ = sock.write_all(&s.take_output());
    s.finish();
    while let Some(ev) = s.poll_event() {
        event(&mut s, ev, peer, sh, &mut active, &mut app);
    }
    end_active(sh, &mut active);
    let _ = sock.shutdown(Shutdown::Both);
    log::debug!("{peer}: disconnected ({reason})");
}

fn flush_active(sh: &Shared, active: &mut Option<Active>) {
    match active.as_mut().map(|a| &mut a.sink) {
        Some(Sink::Exec(c)) => c.flush(),
        Some(Sink::Stdout) => {
            let mut flv = sh.stdout.lock().unwrap_or_else(|e| e.into_inner());
            sh.write_stdout(&mut flv);
        }
        None => {}
    }
}

fn end_active(sh: &Shared, active: &mut Option<Active>) {
    let Some(a) = active.take() else {
        return;
    };
    log::info!("publish of key {} ended", mask(&a.key));
    match a.sink {
        Sink::Exec(c) => (*c).end(),
        Sink::Stdout => {
            {
                let mut flv = sh.stdout.lock().unwrap_or_else(|e| e.into_inner());
                flv.end();
                if flv.dropped_at_splice > 0 {
                    log::warn!(
                        "{} frame(s) of this publish dropped: a track came back late, at timestamps that overlap the previous publish",
                        flv.dropped_at_splice
                    );
                }
                sh.write_stdout(&mut flv);
            }
            let mut st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
            st.stdout_busy = false;
            if !sh.settings.persist {
                sh.done.store(true, Ordering::SeqCst);
            }
        }
    }
    let mut st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
    st.active_keys.remove(&a.key);
}

fn event(
    s: &mut ServerSession,
    ev: ServerEvent,
    peer: SocketAddr,
    sh: &Shared,
    active: &mut Option<Active>,
    app: &mut String,
) {
    let set = &sh.settings;
    match ev {
        ServerEvent::Connect { app: a, .. } => {
            let name = a
                .split('?')
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string();
            match &set.app {
                Some(want) if *want != name => {
                    log::warn!("{peer}: refused: unknown application {name:?}");
                    let _ = s.reject_connect(&format!("unknown application {name:?}"));
                }
                _ => {
                    *app = name;
                    let _ = s.accept_connect();
                }
            }
        }
        ServerEvent::Publish {
            stream_id,
            stream_key,
            ..
        } => {
            let refuse = |s: &mut ServerSession, why: &str| {
                log::warn!(
                    "{peer}: publish of key {} refused: {why}",
                    mask(&stream_key)
                );
                let _ = s.reject_publish(stream_id, "NetStream.Publish.BadName", why);
            };
            if active.is_some() {
                return refuse(s, "this connection already publishes");
            }
            if let Some(keys) = &set.keys {
                if !keys.contains(&stream_key) {
                    return refuse(s, "stream key not accepted");
                }
            }
            let sink = {
                let mut st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
                if st.active_keys.contains(&stream_key) {
                    drop(st);
                    return refuse(s, "this stream key is already publishing");
                }
                if set.exec.is_none() && st.stdout_busy {
                    drop(st);
                    return refuse(s, "another publisher is active (stdout carries one stream)");
                }
                let sink = match &set.exec {
                    Some(cmd) => match ExecChild::spawn(cmd, app, &stream_key, peer) {
                        Ok(c) => Sink::Exec(Box::new(c)),
                        Err(e) => {
                            drop(st);
                            log::error!("{peer}: cannot run --exec command: {e}");
                            return refuse(s, "server error");
                        }
                    },
                    None => {
                        st.stdout_busy = true;
                        sh.stdout.lock().unwrap_or_else(|e| e.into_inner()).begin();
                        Sink::Stdout
                    }
                };
                st.active_keys.insert(stream_key.clone());
                sink
            };
            log::info!("{peer}: publishing app {app:?} key {}", mask(&stream_key));
            let _ = s.accept_publish(stream_id);
            *active = Some(Active {
                stream_id,
                key: stream_key,
                sink,
            });
        }
        ServerEvent::Play { stream_id, .. } => {
            log::warn!("{peer}: play refused: river-rtmp-in only ingests");
            let _ = s.reject_play(stream_id, "river-rtmp-in only accepts publishers");
        }
        ServerEvent::Metadata {
            stream_id,
            name,
            body,
            ..
        } => {
            if name != "onMetaData" {
                return;
            }
            with_flv(sh, active, stream_id, |f| f.metadata(&body));
        }
        ServerEvent::Media {
            stream_id,
            kind,
            timestamp,
            body,
        } => {
            with_flv(sh, active, stream_id, |f| {
                if let Some(n) = f.media(kind, timestamp, &body) {
                    log::info!("{peer}: {n}");
                }
            });
        }
        ServerEvent::Unpublish { stream_id } => {
            if active.as_ref().is_some_and(|a| a.stream_id == stream_id) {
                end_active(sh, active);
            }
        }
        ServerEvent::PlayStop { .. } | ServerEvent::Closed => {}
    }
}

fn with_flv(
    sh: &Shared,
    active: &mut Option<Active>,
    stream_id: u32,
    f: impl FnOnce(&mut FlvSplice),
) {
    let Some(a) = active.as_mut().filter(|a| a.stream_id == stream_id) else {
        return;
    };
    match &mut a.sink {
        Sink::Exec(c) => f(&mut c.flv),
        Sink::Stdout => {
            let mut flv = sh.stdout.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut flv);
            // Written per read, not per tag: see flush_active.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::flv;
    use crate::proto::rtmp::MediaKind;
    use bytes::Bytes;

    fn tags(b: &[u8]) -> Vec<(flv::TagKind, u32, Vec<u8>)> {
        let mut r = flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(b, &mut evs);
        r.finish(&mut evs);
        evs.into_iter()
            .filter_map(|e| match e {
                flv::FlvEvent::Tag(t) => Some((t.kind, t.timestamp, t.body.to_vec())),
                flv::FlvEvent::Warning(w) => panic!("{w}"),
                _ => None,
            })
            .collect()
    }

    fn v(key: bool, n: u8) -> Bytes {
        Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, n])
    }

    #[test]
    fn splices_publishes_into_one_stream() {
        let seq = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3]);
        let aseq = Bytes::from_static(&[0xAF, 0, 0x12, 0x10]);
        let mut f = FlvSplice::new();
        let mut out = Vec::new();
        for session in 0..3u32 {
            f.begin();
            if session == 2 {
                // A reconnect that starts on an inter frame: dropped until the keyframe.
                f.media(MediaKind::Video, 0, &v(false, 99));
            }
            let new_seq = if session == 2 {
                Bytes::from_static(&[0x17, 0, 0, 0, 0, 9, 9])
            } else {
                seq.clone()
            };
            f.media(MediaKind::Video, 0, &new_seq);
            f.media(MediaKind::Audio, 0, &aseq);
            let base = if session == 1 { 5000 } else { 0 };
            for i in 0..10u32 {
                f.media(MediaKind::Video, base + i * 40, &v(i == 0, i as u8));
                f.media(
                    MediaKind::Audio,
                    base + i * 40,
                    &Bytes::from_static(&[0xAF, 1, 7]),
                );
            }
            out.extend(f.take());
        }
        assert_eq!(&out[..3], b"FLV");
        let t = tags(&out);
        let seqs: Vec<u32> = t
            .iter()
            .filter(|(k, _, b)| *k == flv::TagKind::Video && b[1] == 0)
            .map(|x| x.1)
            .collect();
        assert_eq!(
            seqs.len(),
            2,
            "the unchanged header is not repeated; the changed one is"
        );
        assert_eq!(
            t.iter()
                .filter(|(k, _, b)| *k == flv::TagKind::Audio && b[1] == 0)
                .count(),
            1
        );
        let video: Vec<u32> = t
            .iter()
            .filter(|(k, _, b)| *k == flv::TagKind::Video && b[1] == 1)
            .map(|x| x.1)
            .collect();
        assert_eq!(video.len(), 30);
        assert!(video.windows(2).all(|w| w[1] > w[0]), "{video:?}");
        assert_eq!(video[10], 360 + 40, "continues one frame after the last");
        assert!(!t.iter().any(|(_, _, b)| b.get(5) == Some(&99)));
    }

    #[test]
    fn unwraps_the_32_bit_millisecond_wrap() {
        let mut f = FlvSplice::new();
        f.begin();
        let mut ts = u32::MAX - 100;
        let mut got = Vec::new();
        for i in 0..6 {
            f.media(MediaKind::Video, ts, &v(i == 0, 0));
            ts = ts.wrapping_add(40);
        }
        for (_, t, _) in tags(&f.take()) {
            got.push(t);
        }
        // Output stays on the continuing (wrapped-in-FLV) timeline: strictly increasing modulo 2^32.
        for w in got.windows(2) {
            assert_eq!(w[1].wrapping_sub(w[0]), 40, "{got:?}");
        }
    }

    #[test]
    fn masks_keys() {
        assert_eq!(mask("secret"), "se…(6 chars)");
        assert_eq!(mask("abc"), "****(3 chars)");
        assert!(!mask("supersecretkey").contains("secret"));
    }
}
