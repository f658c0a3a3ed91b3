//! river-hls-seg's files: written by a thread of their own, in the order the packager said.
//!
//! Reading and muxing the input and writing the segments are about equal halves of the work
//! (on tmpfs, writing into the page cache was half of river-hls-seg's CPU, reading the input a
//! quarter), so with the writes on a second thread the input is read while the last batch is
//! written, and a slow disk (an fsync in DVR mode, a busy volume) never stalls the input reader.
//! The queue between them is bounded in bytes ([`QUEUE_BYTES`]): past it the reader waits.
//!
//! Invariants: operations are carried out one at a time in the order sent, so a segment is
//! published before the playlist that names it and a file is deleted only after the playlist
//! that dropped it; the first failure stops the writer and every later [`Files::send`] returns
//! it, so no error is lost; a name handed out for a segment still in the queue counts as taken
//! ([`Pending`]), as a file on disk does.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;

use crate::pipeline::SPARE_BUFFERS as SPARE;

/// Bytes that may wait for the writer: about four reads of the input (256 KiB each). The peak
/// RSS goal is 16 MiB.
pub const QUEUE_BYTES: usize = 1 << 20;

/// The temporary name a file is written under before the rename that publishes it:
/// `.NAME.PID.tmp`, hidden (the HTTP server never serves it) and marked with the writer's
/// process, so one a crashed run left behind can be told from one a live process is writing.
fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// The process a temporary file name says wrote it.
fn tmp_writer(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, pid) = rest.rsplit_once('.')?;
    pid.parse()
        .ok()
        .filter(|_| pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporary files under `dir` (folders included, symlinks not followed) whose
/// writing process is gone: what a killed or crashed run was writing. Returns how many.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().to_string();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                if let Some(pid) = tmp_writer(&name) {
                    if pid != std::process::id() && !alive(pid) && fs::remove_file(e.path()).is_ok()
                    {
                        removed += 1;
                    }
                }
            }
        }
    }
    removed
}

/// One thing to do to the files under DIR. URIs are relative to DIR.
#[derive(Debug)]
pub enum Op {
    /// A whole file through a temporary name and a rename: readers see the old file or the new
    /// one, never a partial one. `sync`: fsynced before the rename, the directory after.
    Put {
        uri: String,
        data: Bytes,
        sync: bool,
    },
    /// A media segment begins.
    Open { uri: String },
    /// The next bytes of the open segment.
    Append(Bytes),
    /// The open segment is complete: publish it.
    Close { uri: String, duration: f64 },
    /// Delete a file (and the folders it leaves empty, up to DIR).
    Remove { uri: String },
}

impl Op {
    fn bytes(&self) -> usize {
        match self {
            Op::Put { data, .. } | Op::Append(data) => data.len(),
            _ => 0,
        }
    }
}

/// A segment the writer published.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub path: PathBuf,
    pub uri: String,
    pub duration: f64,
}

/// Segment names handed out whose files are not published yet.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<HashSet<String>>>);

impl Pending {
    pub fn add(&self, uri: &str) {
        lock(&self.0).insert(uri.to_string());
    }

    pub fn contains(&self, uri: &str) -> bool {
        lock(&self.0).contains(uri)
    }

    fn done(&self, uri: &str) {
        lock(&self.0).remove(uri);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer's figures, for `--stats` and `--metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    /// Segments published.
    pub segments: u64,
    /// Time spent writing, syncing, renaming and deleting.
    pub write_secs: f64,
    /// How long publishing the latest segment took (flush, fsync with --dvr, rename).
    pub close_secs: f64,
}

#[derive(Default)]
struct State {
    ops: VecDeque<Op>,
    queued: usize,
    /// The writer is carrying out an operation it took off the queue.
    busy: bool,
    /// No more operations will come.
    closing: bool,
    error: Option<String>,
    closed: Vec<Closed>,
    /// Buffers of [`Op::Append`]s written, for the sender to fill again.
    spare: Vec<Vec<u8>>,
    figures: Figures,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The writer waits here for work.
    work: Condvar,
    /// The sender waits here for room, or for the queue to empty.
    room: Condvar,
}

/// The files under DIR, written on their own thread.
pub struct Files {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Files {
    /// Starts the writer. `durable` (DVR): a published segment or init segment is fsynced
    /// before its rename and the directory after, so a listed file survives a power loss.
    pub fn start(dir: PathBuf, durable: bool, pending: Pending) -> anyhow::Result<Files> {
        let shared = Arc::new(Shared::default());
        let mut store = Store {
            dir,
            durable,
            open: None,
            pending,
        };
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hls-files".into())
            .spawn(move || store.run(&s))
            .context("starting the file writer thread")?;
        Ok(Files {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues an operation; waits while the queue holds more than [`QUEUE_BYTES`]. Fails with
    /// the writer's first error.
    pub fn send(&self, op: Op) -> anyhow::Result<()> {
        let mut st = lock(&self.shared.state);
        while st.error.is_none() && st.queued > QUEUE_BYTES {
            st = self.shared.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if let Some(e) = &st.error {
            return Err(anyhow::anyhow!("{e}"));
        }
        st.queued += op.bytes();
        st.ops.push_back(op);
        drop(st);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Waits until everything sent is done. Fails with the writer's first error.
    pub fn sync(&self) -> anyhow::Result<()> {
        let mut st = lock(&self.shared.state);
        while st.error.is_none() && (st.busy || !st.ops.is_empty()) {
            st = self.shared.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        match &st.error {
            Some(e) => Err(anyhow::anyhow!("{e}")),
            None => Ok(()),
        }
    }

    /// The buffers of [`Op::Append`]s written since the last call that nothing else holds.
    pub fn take_spare(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut lock(&self.shared.state).spare)
    }

    /// The segments published since the last call.
    pub fn take_closed(&self) -> Vec<Closed> {
        std::mem::take(&mut lock(&self.shared.state).closed)
    }

    pub fn figures(&self) -> Figures {
        lock(&self.shared.state).figures
    }

    /// Finishes what was sent and stops the writer. Fails with its first error.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let r = self.sync();
        self.stop();
        r
    }

    fn stop(&mut self) {
        lock(&self.shared.state).closing = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer's side: the files under DIR, and the segment being written.
struct Store {
    dir: PathBuf,
    durable: bool,
    open: Option<(String, PathBuf, PathBuf, BufWriter<File>)>,
    pending: Pending,
}

impl Store {
    fn run(&mut self, shared: &Shared) {
        loop {
            let op = {
                let mut st = lock(&shared.state);
                loop {
                    if let Some(op) = st.ops.pop_front() {
                        st.busy = true;
                        break op;
                    }
                    if st.closing {
                        return;
                    }
                    st = shared.work.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let size = op.bytes();
            let t0 = Instant::now();
            let mut spare = None;
            let r = self.apply(op, &mut spare);
            let took = t0.elapsed().as_secs_f64();
            let mut st = lock(&shared.state);
            if let Some(b) = spare.filter(|_| st.spare.len() < SPARE) {
                st.spare.push(b);
            }
            st.busy = false;
            st.queued -= size;
            st.figures.write_secs += took;
            match r {
                Ok(Some(c)) => {
                    st.figures.segments += 1;
                    st.figures.close_secs = took;
                    st.closed.push(c);
                }
                Ok(None) => {}
                Err(e) => {
                    st.error = Some(format!("{e:#}"));
                    st.ops.clear();
                    st.queued = 0;
                }
            }
            let failed = st.error.is_some();
            drop(st);
            shared.room.notify_all();
            if failed {
                return;
            }
        }
    }

    /// Carries out `op`; an appended buffer nothing else holds is left in `spare`.
    fn apply(&mut self, op: Op, spare: &mut Option<Vec<u8>>) -> anyhow::Result<Option<Closed>> {
        match op {
            Op::Put { uri, data, sync } => {
                let path = self.path(&uri)?;
                self.put(&path, &data, sync)?;
            }
            Op::Open { uri } => {
                let path = self.path(&uri)?;
                let tmp = tmp_name(&path);
                let f =
                    File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
                self.open = Some((uri, path, tmp, BufWriter::with_capacity(256 * 1024, f)));
            }
            Op::Append(data) => {
                if let Some((_, _, tmp, f)) = &mut self.open {
                    f.write_all(&data)
                        .with_context(|| format!("writing {}", tmp.display()))?;
                }
                if data.is_unique() {
                    // The same allocation, not a copy: the Bytes is its only owner.
                    *spare = Some(Vec::from(data));
                }
            }
            Op::Close { uri, duration } => return self.close(uri, duration),
            Op::Remove { uri } => self.remove(&uri),
        }
        Ok(None)
    }

    fn path(&self, uri: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(uri);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        Ok(path)
    }

    /// Makes `tmp` (written, flushed) visible as `path`.
    fn publish(&self, file: &File, tmp: &Path, path: &Path, sync: bool) -> anyhow::Result<()> {
        if sync {
            file.sync_data()
                .with_context(|| format!("syncing {}", tmp.display()))?;
        }
        fs::rename(tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        if sync {
            let dir = path.parent().unwrap_or(&self.dir);
            File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing {}", dir.display()))?;
        }
        Ok(())
    }

    fn put(&self, path: &Path, data: &[u8], sync: bool) -> anyhow::Result<()> {
        let tmp = tmp_name(path);
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)
            .with_context(|| format!("writing {}", tmp.display()))?;
        self.publish(&f, &tmp, path, sync && self.durable)
    }

    fn close(&mut self, uri: String, duration: f64) -> anyhow::Result<Option<Closed>> {
        let Some((open_uri, path, tmp, f)) = self.open.take() else {
            return Ok(None);
        };
        let f = f
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.display()))?;
        self.publish(&f, &tmp, &path, self.durable)?;
        self.pending.done(&open_uri);
        Ok(Some(Closed {
            path,
            uri,
            duration,
        }))
    }

    /// A file already gone is not a problem; one that cannot be removed is logged.
    fn remove(&self, uri: &str) {
        let p = self.dir.join(uri);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("removing old segment {}: {e}", p.display()),
        }
        let mut dir = p.parent();
        while let Some(d) = dir.filter(|d| *d != self.dir && d.starts_with(&self.dir)) {
            // Fails, and stops, at the first folder that is not empty.
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("river-hls-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn operations_run_in_order_and_segments_come_back_closed() {
        let dir = tempdir("order");
        let pending = Pending::default();
        pending.add("a/1.ts");
        let mut files = Files::start(dir.clone(), false, pending.clone()).unwrap();
        files
            .send(Op::Open {
                uri: "a/1.ts".into(),
            })
            .unwrap();
        for i in 0..100u8 {
            files.send(Op::Append(Bytes::from(vec![i; 1000]))).unwrap();
        }
        files
            .send(Op::Close {
                uri: "a/1.ts".into(),
                duration: 2.0,
            })
            .unwrap();
        files
            .send(Op::Put {
                uri: "x.m3u8".into(),
                data: Bytes::from_static(b"#EXTM3U\n"),
                sync: true,
            })
            .unwrap();
        files
            .send(Op::Remove {
                uri: "gone.ts".into(),
            })
            .unwrap();
        files.finish().unwrap();
        let seg = fs::read(dir.join("a/1.ts")).unwrap();
        assert_eq!(seg.len(), 100_000);
        assert!(seg
            .chunks(1000)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&b| b == i as u8)));
        assert_eq!(fs::read(dir.join("x.m3u8")).unwrap(), b"#EXTM3U\n");
        assert!(
            fs::read_dir(dir.join("a")).unwrap().count() == 1,
            "no temporary file is left"
        );
        let closed = files.take_closed();
        assert_eq!(
            closed,
            vec![Closed {
                path: dir.join("a/1.ts"),
                uri: "a/1.ts".into(),
                duration: 2.0
            }]
        );
        assert!(!pending.contains("a/1.ts"));
        assert_eq!(files.figures().segments, 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn appended_buffers_come_back_without_a_copy() {
        let dir = tempdir("spare");
        let mut files = Files::start(dir.clone(), false, Pending::default()).unwrap();
        files.send(Op::Open { uri: "1.ts".into() }).unwrap();
        let mut v = Vec::with_capacity(1 << 20);
        v.extend_from_slice(b"0123");
        let at = v.as_ptr();
        files.send(Op::Append(Bytes::from(v))).unwrap();
        let shared = Bytes::from(vec![1u8; 10]);
        files.send(Op::Append(shared.clone())).unwrap();
        files.sync().unwrap();
        let spare = files.take_spare();
        assert_eq!(
            spare.len(),
            1,
            "the shared buffer stays with its other owner"
        );
        assert_eq!(spare[0].as_ptr(), at);
        assert!(spare[0].capacity() >= 1 << 20);
        files.finish().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_of_processes_gone_are_removed_and_others_kept() {
        let dir = tempdir("stale");
        fs::create_dir_all(dir.join("2026/12")).unwrap();
        // pid_max is at most 2^22 on Linux: this process cannot exist.
        let gone = ["2026/12/.07-1200.ts.99999999.tmp", ".x.m3u8.99999999.tmp"];
        let mine = format!(".a.ts.{}.tmp", std::process::id());
        let parent = format!(".b.ts.{}.tmp", std::os::unix::process::parent_id());
        let other = ["a.ts", ".hidden", ".c.ts.tmp", ".d.ts.12x.tmp"];
        for f in gone.iter().chain(&other) {
            fs::write(dir.join(f), b"x").unwrap();
        }
        fs::write(dir.join(&mine), b"x").unwrap();
        fs::write(dir.join(&parent), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(&dir), 2);
        for f in gone {
            assert!(!dir.join(f).exists(), "{f}");
        }
        for f in other.iter().map(|s| s.to_string()).chain([mine, parent]) {
            assert!(dir.join(&f).exists(), "{f}");
        }
        assert_eq!(tmp_writer(".a.ts.12.tmp"), Some(12));
        assert_eq!(tmp_writer(".a.ts.+12.tmp"), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failure_is_returned_by_every_later_call() {
        let dir = tempdir("fail");
        // A file where the writer needs a folder.
        fs::write(dir.join("blocked"), b"").unwrap();
        let mut files = Files::start(dir.clone(), false, Pending::default()).unwrap();
        files
            .send(Op::Open {
                uri: "blocked/1.ts".into(),
            })
            .unwrap();
        let e = files.sync().unwrap_err().to_string();
        assert!(e.contains("blocked"), "{e}");
        let later = files.send(Op::Append(Bytes::from_static(b"x")));
        assert!(later.unwrap_err().to_string().contains("blocked"));
        assert!(files.finish().is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_queue_holds_at_most_its_bound_beyond_one_operation() {
        let dir = tempdir("bound");
        let files = Files::start(dir.clone(), false, Pending::default()).unwrap();
        files.send(Op::Open { uri: "1.ts".into() }).unwrap();
        for _ in 0..64 {
            files
                .send(Op::Append(Bytes::from(vec![0u8; 1 << 20])))
                .unwrap();
            let queued = lock(&files.shared.state).queued;
            assert!(queued <= QUEUE_BYTES + (1 << 20), "{queued}");
        }
        drop(files);
        fs::remove_dir_all(&dir).unwrap();
    }
}
