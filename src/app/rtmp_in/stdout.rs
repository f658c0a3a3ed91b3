//! river-rtmp-in's stdout: FLV handed to a writer thread, so a slow reader downstream never
//! blocks the reactor. stdout stays a blocking descriptor (it may be shared with other
//! processes; O_NONBLOCK would be theirs too). The reactor counts what it handed over and stops
//! reading the publisher while [`StdoutPipe::backlog`] is over its mark; the thread wakes the
//! reactor when the backlog falls under the mark again, and when writing fails.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::Waker;

/// The writer thread and what it shares with the reactor.
pub struct StdoutPipe {
    tx: Option<Sender<Vec<u8>>>,
    queued: Arc<AtomicUsize>,
    error: Arc<Mutex<Option<io::Error>>>,
    thread: Option<JoinHandle<()>>,
}

impl StdoutPipe {
    /// Starts the writer; it wakes `waker` when the backlog falls under `mark`, or on an error.
    pub fn start(waker: Arc<Waker>, mark: usize) -> io::Result<StdoutPipe> {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let error = Arc::new(Mutex::new(None));
        let (q, err) = (Arc::clone(&queued), Arc::clone(&error));
        let thread = std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                let mut so = io::stdout().lock();
                for data in rx {
                    if let Err(e) = so.write_all(&data).and_then(|_| so.flush()) {
                        *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        let _ = waker.wake();
                        return;
                    }
                    let before = q.fetch_sub(data.len(), Ordering::AcqRel);
                    if before >= mark && before - data.len() < mark {
                        let _ = waker.wake();
                    }
                }
            })?;
        Ok(StdoutPipe {
            tx: Some(tx),
            queued,
            error,
            thread: Some(thread),
        })
    }

    /// Hands `data` to the writer (dropped once writing has failed).
    pub fn send(&self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let n = data.len();
        self.queued.fetch_add(n, Ordering::AcqRel);
        if let Some(tx) = &self.tx {
            if tx.send(data).is_err() {
                self.queued.fetch_sub(n, Ordering::AcqRel);
            }
        }
    }

    /// Bytes handed over and not yet written.
    pub fn backlog(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Whether writing has failed (the error stays for [`finish`](Self::finish)).
    pub fn failed(&self) -> bool {
        self.error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Lets the writer write everything handed over, waits for it, and returns its error.
    pub fn finish(mut self) -> Option<io::Error> {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let e = self.error.lock().unwrap_or_else(|e| e.into_inner()).take();
        e
    }
}
