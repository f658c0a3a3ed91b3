//! The stdin/stdout policy and the one `main` every river tool shares.
//!
//! - Logs go to stderr through env_logger (`RUST_LOG`, or `-v`/`-q`), prefixed with the tool name.
//! - An error is one line on stderr, `river-<tool>: error: …`, and exit status 1.
//! - A downstream reader that closes the pipe is not an error: the tool exits 0 quietly.
//! - Binary output is never written to a terminal (exit status 2).
//! - SIGINT, SIGTERM and SIGHUP set a flag that the tool's loop checks between units; the tool then
//!   finishes the unit in hand, flushes and exits (130 after SIGINT, 0 after SIGTERM/SIGHUP).

use std::error::Error;
use std::io::{self, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicI32, Ordering};

use clap::Parser;

use crate::error::{chain, Chain};

/// Exit statuses shared by every tool, documented in every man page.
pub mod exit {
    /// Done, or the downstream reader closed the pipe, or stopped by SIGTERM/SIGHUP after a clean
    /// finish.
    pub const OK: i32 = 0;
    /// A runtime error (bad input that cannot be continued, I/O failure).
    pub const ERROR: i32 = 1;
    /// A usage error (bad option, or binary output to a terminal).
    pub const USAGE: i32 = 2;
    /// Stopped by SIGINT, after finishing the unit in hand.
    pub const INTERRUPTED: i32 = 130;
}

/// Exit statuses with their meaning, for the man pages.
pub const EXIT_CODES: &[(i32, &str)] = &[
    (exit::OK, "done: end of input, the downstream reader closed the pipe, or stopped by SIGTERM or SIGHUP after finishing the unit in hand"),
    (exit::ERROR, "runtime error: input that cannot be continued, or an I/O failure"),
    (exit::USAGE, "usage error: a bad option, or binary output to a terminal"),
    (exit::INTERRUPTED, "stopped by SIGINT, after finishing the unit in hand and flushing"),
];

/// Environment variables every tool reads, for the man pages.
pub const ENVIRONMENT: &[(&str, &str)] = &[(
    "RUST_LOG",
    "log filter for stderr (error, warn, info, debug, trace, or per-module directives); overrides -v and -q",
)];

/// The text every tool appends to its long help, and so to its man page.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    done: end of input, the downstream reader closed the pipe, or stopped by SIGTERM/SIGHUP
  1    runtime error (input that cannot be continued, I/O failure)
  2    usage error (bad option, or binary output to a terminal)
  130  stopped by SIGINT, after finishing the unit in hand

Environment:
  RUST_LOG  log filter for stderr (error, warn, info, debug, trace); overrides -v/-q";

/// Logging options every tool has.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// Log more to stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log less to stderr (-q errors only, -qq nothing)
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl LogArgs {
    fn level(&self) -> log::LevelFilter {
        use log::LevelFilter::*;
        match (self.verbose, self.quiet) {
            (0, 0) => Warn,
            (0, 1) => Error,
            (0, _) => Off,
            (1, _) => Info,
            (2, _) => Debug,
            _ => Trace,
        }
    }
}

/// A tool's parsed command line: gives the wrapper the logging options.
pub trait ToolArgs: Parser {
    fn log_args(&self) -> &LogArgs;
}

/// The shared main: parse arguments, set up logging and signals, run, map the result to an exit
/// status. Never returns.
///
/// `run`'s error is anything that lends itself as a `dyn Error` with its causes: the `app`
/// functions' `anyhow::Error`, or a `Box<dyn Error + Send + Sync>`. It is printed with every cause
/// ([`Chain`]); a [`UsageError`] anywhere in the chain exits 2, an EPIPE anywhere exits 0 quietly.
pub fn main_with<A, E>(tool: &'static str, run: fn(A) -> Result<(), E>) -> !
where
    A: ToolArgs,
    E: AsRef<dyn Error + Send + Sync + 'static>,
{
    let args = A::parse(); // clap exits 2 on usage errors, 0 for --help/--version
    init_logging(tool, args.log_args());
    install_signal_handlers();
    let code = match run(args) {
        Ok(()) => match stop_signal() {
            Some(libc::SIGINT) => exit::INTERRUPTED,
            _ => exit::OK,
        },
        Err(e) => failure_code(tool, e.as_ref()),
    };
    let _ = io::stderr().flush();
    std::process::exit(code)
}

/// Reports a failed run on stderr (unless the pipe closed) and gives its exit status.
fn failure_code(tool: &str, e: &(dyn Error + 'static)) -> i32 {
    if is_broken_pipe(e) {
        log::debug!("downstream closed the pipe; exiting");
        return exit::OK;
    }
    eprintln!("{tool}: error: {}", Chain(e));
    if chain(e).any(|c| c.is::<UsageError>()) {
        exit::USAGE
    } else {
        exit::ERROR
    }
}

fn init_logging(tool: &'static str, log: &LogArgs) {
    let mut b = env_logger::Builder::new();
    b.filter_level(log.level());
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(move |buf, rec| {
        let lvl = match rec.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        writeln!(buf, "{tool}: {lvl}: {}", rec.args())
    });
    b.target(env_logger::Target::Stderr);
    let _ = b.try_init();
}

/// A usage error found after parsing (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

/// True when the error chain holds an EPIPE from writing to a closed pipe.
pub fn is_broken_pipe(e: &(dyn Error + 'static)) -> bool {
    chain(e).any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
}

/// Installs SIGINT/SIGTERM/SIGHUP handlers without SA_RESTART, so a blocking read returns
/// `Interrupted` and the loop can finish the unit in hand.
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction with a handler that only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as *const () as usize;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The stop signal received so far, if any.
pub fn stop_signal() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Refuses binary output to a terminal.
pub fn require_binary_stdout(what: &str) -> Result<(), UsageError> {
    if io::stdout().is_terminal() {
        return Err(UsageError(format!(
            "refusing to write {what} to a terminal; redirect stdout to a file or pipe it (for example `| ffplay -`)"
        )));
    }
    Ok(())
}

/// What one read from the input gave.
pub enum ReadOutcome {
    /// This many bytes are in the buffer.
    Data(usize),
    /// End of input.
    Eof,
    /// A stop signal arrived; finish up.
    Stop,
}

/// Reads once into `buf`, retrying on EINTR unless a stop signal arrived.
pub fn read_some(input: &mut impl Read, buf: &mut [u8]) -> io::Result<ReadOutcome> {
    loop {
        if stop_signal().is_some() {
            return Ok(ReadOutcome::Stop);
        }
        match input.read(buf) {
            Ok(0) => return Ok(ReadOutcome::Eof),
            Ok(n) => return Ok(ReadOutcome::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// [`read_some`] of stdin (fd 0) straight into the spare capacity of `buf`, at most `max` bytes
/// (room for them is reserved first), with no zeroing of the space beforehand: for a parser that
/// reads into its own buffer ([`crate::pipeline::Demux::input_buffer`]).
pub fn read_stdin_into(buf: &mut bytes::BytesMut, max: usize) -> io::Result<ReadOutcome> {
    buf.reserve(max);
    loop {
        if stop_signal().is_some() {
            return Ok(ReadOutcome::Stop);
        }
        let spare = buf.spare_capacity_mut();
        let len = spare.len().min(max);
        // SAFETY: read(2) writes at most `len` bytes into the spare capacity it is given.
        let n = unsafe { libc::read(0, spare.as_mut_ptr().cast(), len) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(ReadOutcome::Eof);
        }
        // SAFETY: the kernel initialised the first `n` (<= len) bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n as usize) };
        return Ok(ReadOutcome::Data(n as usize));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The tools' errors are `anyhow::Error`s (src/app): their chains must read as before, when
    // main_with took `anyhow::Error` itself and printed `{:#}`.
    fn code(e: anyhow::Error) -> i32 {
        failure_code("river-test", e.as_ref())
    }

    fn pipe() -> io::Error {
        io::Error::from(io::ErrorKind::BrokenPipe)
    }

    #[test]
    fn exit_codes_follow_the_chain() {
        use anyhow::Context;
        assert_eq!(code(UsageError("bad option".into()).into()), exit::USAGE);
        let wrapped = Err::<(), _>(UsageError("bad".into())).context("outer");
        assert_eq!(code(wrapped.unwrap_err()), exit::USAGE);
        let twice = Err::<(), _>(UsageError("bad".into()))
            .context("inner")
            .context("outer");
        assert_eq!(code(twice.unwrap_err()), exit::USAGE);
        assert_eq!(code(pipe().into()), exit::OK);
        let ctx = Err::<(), _>(pipe()).context("writing stdout");
        assert_eq!(code(ctx.unwrap_err()), exit::OK);
        assert_eq!(
            code(anyhow::anyhow!("no video frames received")),
            exit::ERROR
        );
        let other = Err::<(), _>(io::Error::from(io::ErrorKind::NotFound)).context("reading");
        assert_eq!(code(other.unwrap_err()), exit::ERROR);
    }

    #[test]
    fn the_error_line_is_anyhows_alternate_form() {
        use anyhow::Context;
        let e = Err::<(), _>(io::Error::other("disk full"))
            .context("writing seg1.ts")
            .context("closing the segment")
            .unwrap_err();
        assert_eq!(Chain(e.as_ref()).to_string(), format!("{e:#}"));
        assert_eq!(
            Chain(e.as_ref()).to_string(),
            "closing the segment: writing seg1.ts: disk full"
        );
        let e = anyhow::Error::new(crate::error::Diag::new(9, "bad tag")).context("muxing");
        assert_eq!(Chain(e.as_ref()).to_string(), format!("{e:#}"));
    }
}
