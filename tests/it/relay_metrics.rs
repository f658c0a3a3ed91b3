//! The hub's `/stats` and `/metrics`, checked by Prometheus's own tools: `promtool check
//! metrics` on the exposition, and a real `prometheus` scraping a running hub.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::hub::{scratch, Log};
use crate::common::*;
use crate::relay::{handshake, http_get, pattern, raw_exchange, start_hub, WAIT};

/// `promtool check metrics` on an exposition: no errors and no lint warnings.
pub(crate) fn promtool_check(body: &str) {
    require_with("promtool", "apt-get install prometheus");
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "promtool: {text}\n{body}"
    );
}

#[test]
fn stats_json_and_prometheus() {
    let hub = start_hub(&[]);
    let mut live = TcpStream::connect(&hub.fstream).unwrap();
    live.write_all(&handshake(
        "broadcast,user=fier,user-password=123,channel=st",
    ))
    .unwrap();
    let mut w = TcpStream::connect(&hub.fstream).unwrap();
    w.write_all(&handshake("watch,user=fier,channel=st"))
        .unwrap();
    hub.wait_watchers("fier", "st", 1);
    live.write_all(&pattern(50_000, 6)).unwrap();
    w.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 65536];
    while got < 50_000 {
        got += w.read(&mut buf).unwrap();
    }
    let start = Instant::now();
    let ch = loop {
        let s = hub.stats();
        let ch = s["channels"][0].clone();
        if ch["watchers"][0]["bytes_sent"].as_u64() == Some(50_000) {
            break ch;
        }
        assert!(start.elapsed() < WAIT, "stats never showed the bytes: {s}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ch["user"], "fier");
    assert_eq!(ch["channel"], "st");
    assert_eq!(ch["live"], true);
    assert_eq!(ch["format"], "opaque");
    assert_eq!(ch["bytes_in"], 50_000);
    let wt = &ch["watchers"][0];
    assert_eq!(wt["kind"], "fstream");
    assert_eq!(wt["queue_bytes"], 0);
    assert_eq!(wt["chunks_dropped"], 0);
    let (head, body) = http_get(&hub.http, "/metrics");
    assert!(head.contains("Content-Type: text/plain"), "{head}");
    let body = String::from_utf8(body).unwrap();
    for series in [
        "river_relay_channel_bytes_in_total{user=\"fier\",channel=\"st\",protocol=\"fstream\"} 50000",
        "river_relay_channel_bytes_out_total{user=\"fier\",channel=\"st\",protocol=\"fstream\"} 50000",
        "river_relay_channel_watchers{user=\"fier\",channel=\"st\",protocol=\"fstream\"} 1",
        "river_relay_channel_live{user=\"fier\",channel=\"st\"} 1",
        "river_relay_connections{front=\"fstream\"} 2",
        "river_relay_queue_delay_seconds_count{protocol=\"fstream\"}",
    ] {
        assert!(body.contains(series), "{series} in:\n{body}");
    }
    promtool_check(&body);
    // 30 watchers come and go, and 5 are refused: the series count does not grow with them,
    // and the counters keep what they did.
    let lines = body.lines().count();
    for _ in 0..30 {
        let mut w = TcpStream::connect(&hub.fstream).unwrap();
        w.write_all(&handshake("watch,user=fier,channel=st"))
            .unwrap();
        let mut b = [0u8; 1];
        w.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let _ = w.read(&mut b);
    }
    for _ in 0..5 {
        raw_exchange(
            &hub.fstream,
            &handshake("broadcast,user=fier,user-password=bad,channel=x"),
        );
    }
    let start = Instant::now();
    let body = loop {
        let (_, body) = http_get(&hub.http, "/metrics");
        let body = String::from_utf8(body).unwrap();
        let gone = "river_relay_channel_disconnects_total{user=\"fier\",channel=\"st\",protocol=\"fstream\",reason=\"closed\"} 30";
        if body.contains(gone) {
            break body;
        }
        assert!(start.elapsed() < WAIT, "{gone} never showed:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        body.contains("river_relay_refused_total{front=\"fstream\",reason=\"auth\"} 5"),
        "{body}"
    );
    assert_eq!(body.lines().count(), lines, "{body}");
    promtool_check(&body);
}

/// A real `prometheus` scrapes a running hub every second; a query through its HTTP API returns
/// the channel's series with their labels and values.
#[test]
fn prometheus_scrapes_the_hub_and_answers_a_query_for_the_channel() {
    require_with("prometheus", "apt-get install prometheus");
    let hub = start_hub(&[]);
    let mut live = TcpStream::connect(&hub.fstream).unwrap();
    live.write_all(&handshake(
        "broadcast,user=fier,user-password=123,channel=prom",
    ))
    .unwrap();
    live.write_all(&pattern(12_345, 3)).unwrap();
    let dir = scratch("prometheus");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: river\n    static_configs:\n      - targets: ['{}']\n",
            hub.http
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::follow(&mut prom);
    let api = format!("127.0.0.1:{port}");
    let q = "/api/v1/query?query=river_relay_channel_bytes_in_total%7Bchannel%3D%22prom%22%7D";
    let start = Instant::now();
    let answer = loop {
        if let Ok(s) = TcpStream::connect(&api) {
            drop(s);
            let (head, body) = http_get(&api, q);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if head.starts_with("HTTP/1.1 200") && v["data"]["result"][0].is_object() {
                break v;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "prometheus never returned the series; its log:\n{}",
            log.text()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    // The scrape itself succeeded (a parse error would make `up` 0).
    let (_, body) = http_get(&api, "/api/v1/query?query=up%7Bjob%3D%22river%22%7D");
    let up: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let _ = prom.kill();
    let _ = prom.wait();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let r = &answer["data"]["result"][0];
    assert_eq!(r["metric"]["user"], "fier", "{answer}");
    assert_eq!(r["metric"]["protocol"], "fstream", "{answer}");
    assert_eq!(r["metric"]["job"], "river", "{answer}");
    assert_eq!(r["value"][1], "12345", "{answer}");
}
