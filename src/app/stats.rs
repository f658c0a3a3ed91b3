//! `--stats` and `--metrics` of the pipe tools: a [`Meter`] shared with a small HTTP server that
//! answers `GET /metrics`, and the progress line on stderr (redrawn in place on a terminal, a log
//! line every `--stats-period` otherwise).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;

use crate::cli::StatsArgs;
use crate::http::handler::{Body, Handler, Reply, Request, Response};
use crate::http::run::{spawn, Running};
use crate::http::server::Options;
use crate::pipeline::progress::Meter;

/// Answers `GET /metrics` with the meter's Prometheus text.
#[derive(Clone)]
struct Metrics {
    meter: Arc<Mutex<Meter>>,
    tool: &'static str,
}

impl Handler for Metrics {
    fn request(&mut self, req: &Request, now: Instant) -> Reply {
        let path = req.head.target.split('?').next().unwrap_or("");
        if path != "/metrics" {
            return Reply::Now(Response::text(404, "not found: this serves /metrics\n"));
        }
        if !matches!(req.head.method.as_str(), "GET" | "HEAD") {
            return Reply::Now(Response::text(405, "only GET and HEAD\n"));
        }
        let body = self
            .meter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .to_prometheus(self.tool, now);
        Reply::Now(
            Response::new(200, Body::Bytes(Bytes::from(body)))
                .field("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
        )
    }
}

/// A tool's `--stats` line and `--metrics` endpoint.
pub(crate) struct Stats {
    pub meter: Arc<Mutex<Meter>>,
    show: bool,
    tty: bool,
    period: Duration,
    prog: &'static str,
    drawn: bool,
    _server: Option<Running>,
}

impl Stats {
    /// `tool`: the Prometheus prefix (`mux_ts`, `hls_seg`…); `prog`: the program name for lines.
    pub fn start(args: &StatsArgs, tool: &'static str, prog: &'static str) -> anyhow::Result<Self> {
        let meter = Arc::new(Mutex::new(Meter::new(Instant::now())));
        let server = match &args.metrics {
            None => None,
            Some(addr) => {
                let r = spawn(
                    addr,
                    Metrics {
                        meter: Arc::clone(&meter),
                        tool,
                    },
                    Options::default(),
                    1,
                    &format!("{prog}-metrics"),
                )
                .with_context(|| format!("--metrics: cannot listen on {addr}"))?;
                // Printed whatever the log level: scripts read the bound address here.
                eprintln!("{prog}: metrics on http://{}/metrics", r.local_addr());
                Some(r)
            }
        };
        Ok(Stats {
            meter,
            show: args.stats,
            tty: std::io::stderr().is_terminal(),
            period: args.stats_period.as_duration(),
            prog,
            drawn: false,
            _server: server,
        })
    }

    /// Counting only: no line, no endpoint (a tool whose `--stats` is not wired yet).
    pub fn off() -> Self {
        Stats {
            meter: Arc::new(Mutex::new(Meter::new(Instant::now()))),
            show: false,
            tty: false,
            period: Duration::from_secs(10),
            prog: "",
            drawn: false,
            _server: None,
        }
    }

    /// Runs `f` on the meter.
    pub fn with<R>(&self, f: impl FnOnce(&mut Meter) -> R) -> R {
        f(&mut self.meter.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Prints the progress line when one is due.
    pub fn tick(&mut self, now: Instant) {
        if !self.show {
            return;
        }
        let (tty, period) = (self.tty, self.period);
        if let Some(line) = self.with(|m| m.due(now, tty, period)) {
            self.print(&line);
        }
    }

    fn print(&mut self, line: &str) {
        let mut e = std::io::stderr().lock();
        if self.tty {
            // Redrawn in place, as ffmpeg's: carriage return, the line, erase to its end.
            let _ = write!(e, "\r{}: {line}\x1b[K", self.prog);
            self.drawn = true;
        } else {
            let _ = writeln!(e, "{}: stats: {line}", self.prog);
        }
    }

    /// The last line, at the end of the run (and the terminal's line ended).
    pub fn finish(&mut self) {
        if !self.show {
            return;
        }
        let line = self.with(|m| m.line(Instant::now()));
        self.print(&line);
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}
