//! river-relay: serve (the hub), broadcast and watch (its clients), and fstream.py's command line.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{
    BroadcastArgs, ChannelArgs, HlsVariant, Relay, RelayCmd, RetryArgs, ServeArgs, UnclockedMode,
    WatchArgs,
};
use crate::net::listener::resolve;
use crate::proto::fstream::{Request, Role};
use crate::relay::cache::CacheLimits;
use crate::relay::client::{self, Retry};
use crate::relay::hooks::{Config as HookConfig, Hook, Target};
use crate::relay::hub::{Config, Hub};
use crate::relay::pace::Unclocked;
use crate::relay::queue::QueueLimits;
use crate::stdio::{require_binary_stdout, stop_signal, UsageError};

/// `river-relay`.
pub fn relay(args: Relay) -> anyhow::Result<()> {
    match args.cmd {
        RelayCmd::Serve(s) => serve(*s),
        RelayCmd::Broadcast(b) => broadcast(b),
        RelayCmd::Watch(w) => watch(w),
        RelayCmd::Fstream(v) => fstream_form(v),
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let cfg = Config {
        listen: a.listen.clone(),
        http: a.http.clone(),
        rtmp: a.rtmp.clone(),
        rtmp_merge: a.rtmp_merge,
        rtsp: a.rtsp.clone(),
        rtsp_udp_port: (!a.no_rtsp_udp).then_some(a.rtsp_udp_port),
        rtsp_timeout: a.rtsp_timeout.as_duration(),
        users: a.users.clone(),
        gop_cache: !a.no_gop_cache,
        max_connections: a.max_connections,
        queue: QueueLimits {
            max_bytes: a.queue_bytes.0,
            max_age: a.queue_time.as_duration(),
            max_behind: a.max_behind.as_duration(),
        },
        cache: CacheLimits {
            max_bytes: a.cache_bytes.0,
            max_age: a.cache_time.as_duration(),
        },
        max_waiting: a.max_waiting,
        wait_timeout: a.wait_timeout.as_duration(),
        stats_interval: a.stats_interval.as_duration(),
        unclocked: match a.unclocked {
            UnclockedMode::Pace => Unclocked::Pace,
            UnclockedMode::Isolate => Unclocked::Isolate,
        },
        hooks: hooks(&a)?,
        origin: a.origin.clone(),
        origin_idle: a.origin_idle.as_duration(),
        push_to: a.push_to.clone(),
        hls: hls(&a)?,
    };
    if !a.users.is_dir() {
        log::warn!(
            "users directory {} does not exist: every broadcaster will be refused",
            a.users.display()
        );
    }
    let (mut hub, bound) = Hub::bind(cfg).context("binding")?;
    // Printed whatever the log level: tests and scripts read the bound addresses here.
    eprintln!("river-relay: fstream listening on {}", bound.fstream);
    if let Some(h) = bound.http {
        eprintln!("river-relay: http listening on {h}");
    }
    if let Some(r) = bound.rtmp {
        eprintln!("river-relay: rtmp listening on {r}");
    }
    if let Some(r) = bound.rtsp {
        eprintln!("river-relay: rtsp listening on {r}");
    }
    if let Some((rtp, rtcp)) = bound.rtsp_udp {
        eprintln!("river-relay: rtsp udp on {rtp} (RTP) and {rtcp} (RTCP)");
    }
    hub.run(|| stop_signal().is_some()).context("event loop")?;
    Ok(())
}

/// The hooks `serve` calls, their host names resolved now (a usage error when they do not parse
/// or resolve).
fn hooks(a: &ServeArgs) -> anyhow::Result<HookConfig> {
    let mut cfg = HookConfig {
        timeout: a.hook_timeout.as_duration(),
        ..Default::default()
    };
    let urls = [&a.on_publish, &a.on_play, &a.on_unpublish, &a.on_stop];
    for (slot, (hook, url)) in cfg.targets.iter_mut().zip(Hook::ALL.iter().zip(urls)) {
        let Some(url) = url else { continue };
        let t = Target::parse(url).map_err(|e| UsageError(format!("--on-{}: {e}", hook.name())))?;
        let addr = resolve(&t.host)
            .map_err(|e| UsageError(format!("--on-{}: hook URL {url:?}: {e}", hook.name())))?;
        *slot = Some((t, addr));
    }
    Ok(cfg)
}

/// `--hls` and its settings, checked.
fn hls(a: &ServeArgs) -> anyhow::Result<Option<crate::relay::hls::Config>> {
    use crate::relay::hls::{Config as HlsConfig, Variant};
    if !a.hls {
        return Ok(None);
    }
    let seg = a.hls_segment_time;
    if !(seg > 0.0 && seg <= 60.0) {
        return Err(UsageError(format!("--hls-segment-time {seg} out of range (0, 60]")).into());
    }
    let part = a.hls_part_time;
    if !(part >= 0.02 && part <= seg) {
        let m = format!("--hls-part-time {part} out of range [0.02, --hls-segment-time]");
        return Err(UsageError(m).into());
    }
    if a.hls_list_size == 0 {
        return Err(UsageError("--hls-list-size must be at least 1".into()).into());
    }
    let idle = a.hls_idle_timeout.as_duration();
    if idle < Duration::from_secs(1) {
        return Err(UsageError("--hls-idle-timeout must be at least 1s".into()).into());
    }
    let ttl = a.hls_token_ttl.as_duration();
    if ttl < Duration::from_secs(1) {
        return Err(UsageError("--hls-token-ttl must be at least 1s".into()).into());
    }
    Ok(Some(HlsConfig {
        default: match a.hls_variant {
            HlsVariant::LowLatency => Variant::LowLatency,
            HlsVariant::Fmp4 => Variant::Fmp4,
            HlsVariant::Ts => Variant::Ts,
        },
        segment_secs: seg,
        part_secs: part,
        window: a.hls_list_size,
        idle,
        token_ttl: ttl,
    }))
}

fn first_line(path: &Path, what: &str) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    Ok(s.lines().next().unwrap_or("").to_string())
}

fn channel_password(c: &ChannelArgs) -> anyhow::Result<Option<String>> {
    match (&c.channel_password, &c.channel_password_file) {
        (_, Some(f)) => Ok(Some(first_line(f, "channel password")?)),
        (Some(p), None) => Ok(Some(p.clone())),
        (None, None) => Ok(None),
    }
}

fn retry(r: &RetryArgs) -> Retry {
    Retry {
        enabled: r.retry,
        max_delay: r
            .retry_max_delay
            .as_duration()
            .max(Duration::from_millis(100)),
        limit: r.retry_limit,
    }
}

fn request(
    role: Role,
    c: &ChannelArgs,
    user_password: Option<String>,
    bufsize: Option<usize>,
) -> anyhow::Result<Request> {
    let req = Request {
        role,
        user: c.user.clone(),
        user_password,
        channel: c.channel.clone(),
        channel_password: channel_password(c)?,
        bufsize,
        extra: Vec::new(),
    };
    // The hub's own rules, checked here so a bad name is a usage error, not a silent refusal.
    Request::parse_payload(&req.to_payload())
        .map_err(|e| UsageError(format!("invalid user, channel or password: {e}")))?;
    Ok(req)
}

fn broadcast(b: BroadcastArgs) -> anyhow::Result<()> {
    let pw = match (&b.password, &b.password_file) {
        (_, Some(f)) => first_line(f, "user password")?,
        (Some(p), None) => p.clone(),
        (None, None) => {
            return Err(UsageError(
                "a broadcaster needs --password, RIVER_USER_PASSWORD or --password-file".into(),
            )
            .into())
        }
    };
    let req = request(Role::Broadcast, &b.chan, Some(pw), b.bufsize)?;
    client::broadcast(&b.addr, &req, b.bufsize, &retry(&b.retry))?;
    Ok(())
}

fn watch(w: WatchArgs) -> anyhow::Result<()> {
    let req = request(Role::Watch, &w.chan, None, None)?;
    require_binary_stdout("the stream")?;
    client::watch(&w.addr, &req, &retry(&w.retry))?;
    Ok(())
}

/// `river-relay ADDR PAYLOAD`, as fstream.py takes it.
fn fstream_form(v: Vec<std::ffi::OsString>) -> anyhow::Result<()> {
    let usage = || {
        UsageError(
            "unknown command; use serve, broadcast or watch, or fstream.py's form `river-relay HOST:PORT broadcast,user=U,user-password=P[,channel=C]` / `river-relay HOST:PORT watch,user=U[,channel=C]` (see --help)".into(),
        )
    };
    let [addr, payload] = v.as_slice() else {
        return Err(usage().into());
    };
    let (Some(addr), Some(payload)) = (addr.to_str(), payload.to_str()) else {
        return Err(usage().into());
    };
    if !addr.contains(':') {
        return Err(usage().into());
    }
    let req = Request::parse_payload(payload)
        .map_err(|e| UsageError(format!("fstream payload {payload:?}: {e}")))?;
    let r = Retry {
        enabled: false,
        max_delay: Duration::from_secs(5),
        limit: 0,
    };
    match req.role {
        Role::Broadcast => {
            if req.user_password.is_none() {
                return Err(UsageError("a broadcaster needs user-password=...".into()).into());
            }
            client::broadcast(addr, &req, req.bufsize.filter(|&b| b > 0), &r)?;
            Ok(())
        }
        Role::Watch => {
            require_binary_stdout("the stream")?;
            client::watch(addr, &req, &r)?;
            Ok(())
        }
    }
}
