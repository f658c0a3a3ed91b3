//! One connection's write path and reads: the only place river writes to a TCP socket.
//!
//! [`Outbox`] is a bounded queue of shared chunks ([`bytes::Bytes`], so one buffer can go to many
//! connections) and file ranges. [`Outbox::write_to`] writes as much as the socket takes: memory
//! chunks with one vectored write of up to [`MAX_IOV`] chunks, a file range with `sendfile(2)`
//! (no copy through user space). `WouldBlock` ends the attempt (the socket's next writable event
//! resumes it), `EINTR` retries; both are handled here once for every caller.
//!
//! Bound: [`Outbox::push`] refuses memory beyond the limit given to [`Outbox::new`]; the caller
//! decides what a refusal means (a streaming watcher is too slow, for example). File ranges are
//! not counted: they cost a descriptor, not memory, and callers queue at most one at a time.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use bytes::Bytes;
use mio::net::TcpStream;

/// Most chunks in one vectored write.
pub const MAX_IOV: usize = 64;
/// An empty outbox whose ring holds more chunks than this gives the memory back.
const SHRINK_ABOVE: usize = 64;
/// Largest `sendfile` call (Linux caps one call at about 2 GiB anyway).
const SENDFILE_MAX: u64 = 1 << 30;

/// The memory limit was reached; nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

enum Item {
    Mem(Bytes),
    File {
        file: Arc<File>,
        off: u64,
        left: u64,
    },
}

/// What one [`Outbox::write_to`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrote {
    /// Bytes written in this call.
    pub bytes: u64,
    /// Everything queued is written.
    pub drained: bool,
}

/// Queued output for one connection.
pub struct Outbox {
    q: VecDeque<Item>,
    /// Bytes of the front memory chunk already written.
    front_off: usize,
    /// Unwritten memory bytes.
    mem: usize,
    limit: usize,
}

impl Outbox {
    /// An empty outbox that holds at most `limit` unwritten memory bytes.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            q: VecDeque::new(),
            front_off: 0,
            mem: 0,
            limit,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Unwritten memory bytes.
    pub fn queued(&self) -> usize {
        self.mem
    }

    /// Room left under the limit.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.mem)
    }

    /// Queues `b` unless that would pass the limit. An empty chunk is a no-op.
    pub fn push(&mut self, b: Bytes) -> Result<(), Full> {
        if b.is_empty() {
            return Ok(());
        }
        if self.mem + b.len() > self.limit {
            return Err(Full);
        }
        self.mem += b.len();
        self.q.push_back(Item::Mem(b));
        Ok(())
    }

    /// Queues `b` whatever the limit (response heads and short answers the caller has bounded).
    pub fn push_always(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.mem += b.len();
            self.q.push_back(Item::Mem(b));
        }
    }

    /// Queues `len` bytes of `file` from `off`.
    pub fn push_file(&mut self, file: Arc<File>, off: u64, len: u64) {
        if len > 0 {
            self.q.push_back(Item::File {
                file,
                off,
                left: len,
            });
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.q.clear();
        self.front_off = 0;
        self.mem = 0;
    }

    fn consume_mem(&mut self, mut n: usize) {
        self.mem -= n;
        while n > 0 {
            let Some(Item::Mem(b)) = self.q.front() else {
                return;
            };
            let left = b.len() - self.front_off;
            if n < left {
                self.front_off += n;
                return;
            }
            n -= left;
            self.front_off = 0;
            self.q.pop_front();
        }
        // A burst grew the ring: give it back once written, so idle connections hold little.
        if self.q.is_empty() && self.q.capacity() > SHRINK_ABOVE {
            self.q.shrink_to(SHRINK_ABOVE / 4);
        }
    }

    /// Writes until the queue is empty or `w` would block. An error other than `WouldBlock` and
    /// `EINTR` is returned (the connection is finished).
    pub fn write_to<W: Write + AsRawFd>(&mut self, w: &mut W) -> io::Result<Wrote> {
        let mut total = 0u64;
        loop {
            let r = match self.q.front_mut() {
                None => {
                    return Ok(Wrote {
                        bytes: total,
                        drained: true,
                    })
                }
                Some(Item::File { file, off, left }) => {
                    match send_file(w, file, *off, (*left).min(SENDFILE_MAX)) {
                        Ok(0) => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file ended before its length",
                        )),
                        Ok(n) => {
                            *off += n;
                            *left -= n;
                            if *left == 0 {
                                self.q.pop_front();
                            }
                            Ok(n as usize)
                        }
                        Err(e) => Err(e),
                    }
                }
                Some(Item::Mem(_)) => {
                    let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
                    let mut k = 0;
                    for (i, it) in self.q.iter().enumerate() {
                        let Item::Mem(b) = it else { break };
                        if k == MAX_IOV {
                            break;
                        }
                        iov[k] = IoSlice::new(if i == 0 { &b[self.front_off..] } else { b });
                        k += 1;
                    }
                    // A file range next: the head goes with `MSG_MORE`, so the kernel sends
                    // it in one segment with the file's first bytes instead of on its own.
                    let more = matches!(self.q.get(k), Some(Item::File { .. }));
                    let r = if more {
                        send_more(w, &iov[..k])
                    } else {
                        w.write_vectored(&iov[..k])
                    };
                    match r {
                        Ok(0) => Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
                        Ok(n) => {
                            self.consume_mem(n);
                            Ok(n)
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match r {
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Wrote {
                        bytes: total,
                        drained: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// One `sendmsg(2)` of `iov` with `MSG_MORE` (more data follows at once; the kernel may hold a
/// partial segment for it).
fn send_more<W: AsRawFd>(w: &W, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero `msghdr` is empty; `IoSlice` is ABI compatible with `iovec` on Unix.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: a valid descriptor and a `msghdr` pointing at `iov`, alive for the call.
    let r = unsafe { libc::sendmsg(w.as_raw_fd(), &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// `sendfile(2)` from `file` at `off`; where the kernel cannot (`EINVAL`, `ENOSYS`), a `pread`
/// and a plain write of up to 64 KiB.
fn send_file<W: Write + AsRawFd>(w: &mut W, file: &File, off: u64, len: u64) -> io::Result<u64> {
    let mut o = libc::off_t::try_from(off).map_err(io::Error::other)?;
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    // SAFETY: two valid descriptors and a valid off_t for the duration of the call.
    let r = unsafe { libc::sendfile(w.as_raw_fd(), file.as_raw_fd(), &mut o, n) };
    if r >= 0 {
        return Ok(r as u64);
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(e);
    }
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; n.min(64 * 1024)];
    let got = file.read_at(&mut buf, off)?;
    if got == 0 {
        return Ok(0);
    }
    Ok(w.write(&buf[..got])? as u64)
}

/// What [`Conn::read_into`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Read this many bytes and the socket has no more for now.
    Drained(usize),
    /// Read this many bytes and stopped at the cap; more may be waiting (read again later: no
    /// event comes for bytes already signalled).
    Capped(usize),
    /// The peer closed its side (after this many bytes).
    Eof(usize),
}

/// A non-blocking TCP connection with its outbox.
pub struct Conn {
    pub sock: TcpStream,
    pub out: Outbox,
}

impl Conn {
    pub fn new(sock: TcpStream, out_limit: usize) -> Conn {
        Conn {
            sock,
            out: Outbox::new(out_limit),
        }
    }

    /// Reads into `buf` until the socket would block, the peer closes, or `buf` holds `cap`
    /// bytes. `EINTR` retries.
    ///
    /// With `short_drains`, a read that returns fewer bytes than asked for ends the call as
    /// [`Received::Drained`] without the read that would say `WouldBlock`: a TCP read returns
    /// short only when the receive queue is empty, and bytes or a FIN arriving later raise a new
    /// edge-triggered event. A FIN that came before the read does not (its event has been
    /// taken), so pass it only when that event did not say the peer's side is closed.
    pub fn read_into(
        &mut self,
        buf: &mut Vec<u8>,
        cap: usize,
        short_drains: bool,
    ) -> io::Result<Received> {
        let mut total = 0;
        loop {
            if buf.len() >= cap {
                return Ok(Received::Capped(total));
            }
            let want = (cap - buf.len()).min(64 * 1024);
            buf.reserve(want);
            let spare = buf.spare_capacity_mut();
            let asked = want.min(spare.len());
            // SAFETY: `read(2)` writes at most `want` bytes into the spare capacity reserved
            // above, and `set_len` covers only the bytes it wrote (no zeroing of the buffer on
            // every read).
            let r = unsafe { libc::read(self.sock.as_raw_fd(), spare.as_mut_ptr().cast(), asked) };
            match r {
                0 => return Ok(Received::Eof(total)),
                n if n > 0 => {
                    // SAFETY: the kernel initialised these `n` bytes.
                    unsafe { buf.set_len(buf.len() + n as usize) };
                    total += n as usize;
                    if short_drains && (n as usize) < asked {
                        return Ok(Received::Drained(total));
                    }
                }
                _ => {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Ok(Received::Drained(total)),
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(e),
                    }
                }
            }
        }
    }

    /// Writes `iov` (bytes that live elsewhere, such as a watcher's queue) with one vectored
    /// write, after the outbox only if the caller has flushed it. `Ok(None)`: the socket takes
    /// nothing now (its next writable event resumes). `EINTR` retries.
    pub fn write_iov(&mut self, iov: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
        loop {
            return match self.sock.write_vectored(iov) {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// `SO_RCVLOWAT`: the socket is readable (and wakes its poller) only once `n` bytes are
    /// waiting, or at EOF or an error; a read still returns whatever is there. Linux grows the
    /// receive buffer to hold `n` if it has to.
    pub fn set_recv_low_water(&self, n: usize) -> io::Result<()> {
        let v = libc::c_int::try_from(n.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: a valid descriptor and a pointer to a c_int alive for the call.
        let r = unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes what the outbox holds; see [`Outbox::write_to`].
    pub fn flush(&mut self) -> io::Result<Wrote> {
        self.out.write_to(&mut self.sock)
    }

    /// Sends FIN after what was written (the peer reads to the end, then sees EOF).
    pub fn shutdown_write(&self) {
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    /// A writer taking at most `take` bytes per call, failing with the scripted errors first.
    struct Script {
        got: Vec<u8>,
        take: usize,
        errors: Vec<io::ErrorKind>,
        fd: UnixStream,
    }

    impl Write for Script {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if let Some(k) = self.errors.pop() {
                return Err(k.into());
            }
            let n = b.len().min(self.take);
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl AsRawFd for Script {
        fn as_raw_fd(&self) -> std::os::fd::RawFd {
            self.fd.as_raw_fd()
        }
    }

    fn script(take: usize, errors: Vec<io::ErrorKind>) -> Script {
        Script {
            got: Vec::new(),
            take,
            errors,
            fd: UnixStream::pair().unwrap().0,
        }
    }

    #[test]
    fn push_is_bounded() {
        let mut o = Outbox::new(10);
        assert_eq!(o.push(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(o.push(Bytes::from_static(b"12345")), Err(Full));
        assert_eq!(o.push(Bytes::from_static(b"1234")), Ok(()));
        assert_eq!((o.queued(), o.room()), (10, 0));
        o.push_always(Bytes::from_static(b"head"));
        assert_eq!(o.queued(), 14);
    }

    #[test]
    fn partial_writes_eintr_and_wouldblock() {
        let mut o = Outbox::new(1 << 20);
        for c in [&b"hello "[..], b"shared ", b"chunks"] {
            o.push(Bytes::copy_from_slice(c)).unwrap();
        }
        // Errors pop from the end: EINTR is retried, WouldBlock ends the call.
        let mut w = script(
            4,
            vec![io::ErrorKind::WouldBlock, io::ErrorKind::Interrupted],
        );
        let r = o.write_to(&mut w).unwrap();
        assert_eq!(
            r,
            Wrote {
                bytes: 0,
                drained: false
            }
        );
        let r = o.write_to(&mut w).unwrap();
        assert_eq!(
            r,
            Wrote {
                bytes: 19,
                drained: true
            }
        );
        assert_eq!(w.got, b"hello shared chunks");
        assert!(o.is_empty());
        assert_eq!(o.queued(), 0);
    }

    #[test]
    fn a_hard_error_is_returned() {
        let mut o = Outbox::new(100);
        o.push(Bytes::from_static(b"x")).unwrap();
        let mut w = script(4, vec![io::ErrorKind::BrokenPipe]);
        assert_eq!(
            o.write_to(&mut w).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn file_ranges_go_between_chunks() {
        let dir = std::env::temp_dir().join(format!("river-net-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = Arc::new(File::open(&p).unwrap());
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut a = a;
        let mut o = Outbox::new(1 << 20);
        o.push(Bytes::from_static(b"HEAD")).unwrap();
        o.push_file(f, 1000, 150_000);
        o.push(Bytes::from_static(b"TAIL")).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        });
        let t = std::time::Instant::now();
        loop {
            let r = o.write_to(&mut a).unwrap();
            if r.drained {
                break;
            }
            assert!(t.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(a);
        let got = reader.join().unwrap();
        let mut want = b"HEAD".to_vec();
        want.extend_from_slice(&data[1000..151_000]);
        want.extend_from_slice(b"TAIL");
        assert!(got == want, "{} bytes, want {}", got.len(), want.len());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
