//! Serves a directory with river's HLS HTTP server until stdin closes: the stand-in for
//! `river-hls-seg --serve` that bench/http.sh uses.
//!
//!     cargo run --release --example http_serve -- 127.0.0.1:9000 www/live [WORKERS]
//!
//! Prints the playlist URL on stdout once listening.

use std::io::Read;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, dir, rest @ ..] = args.as_slice() else {
        eprintln!("usage: http_serve ADDR DIR [WORKERS]");
        std::process::exit(2);
    };
    let mut opts = river::http::ServeOptions::default();
    if let Some(w) = rest.first() {
        opts.workers = w.parse().unwrap_or(opts.workers);
    }
    let h = river::http::serve(addr, dir.into(), opts)?;
    println!("{}", h.playlist_url());
    // Run until stdin reaches EOF (the bench closes it), then shut down cleanly.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let st = h.stats();
    h.shutdown();
    eprintln!("http_serve: {st:?}");
    Ok(())
}
