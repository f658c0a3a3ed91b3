//! The `Transport` header (RFC 2326 12.39): RTP over TCP interleaved, or over UDP unicast.

/// How one stream's RTP and RTCP travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// Interleaved on the RTSP connection: RTP on the first channel, RTCP on the second.
    Tcp { interleaved: (u8, u8) },
    /// UDP unicast: the client's RTP and RTCP ports, and (in answers) the server's.
    Udp {
        client_port: (u16, u16),
        server_port: Option<(u16, u16)>,
    },
}

/// One transport specification (a `Transport` header may list several, comma-separated, in order
/// of the client's preference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub lower: Lower,
    /// `mode=record` (or `receive`): the client sends media.
    pub record: bool,
    pub ssrc: Option<u32>,
}

/// A specification river cannot serve, and why (answered with 461).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Parses a `Transport` header into the specifications river can serve, in the client's order.
/// `Err` when none of them is usable (the reason of the first).
pub fn parse(header: &str) -> Result<Vec<Transport>, Unsupported> {
    let mut ok = Vec::new();
    let mut first_err = None;
    for spec in header.split(',') {
        match parse_one(spec.trim()) {
            Ok(t) => ok.push(t),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if ok.is_empty() {
        return Err(first_err.unwrap_or_else(|| Unsupported("an empty Transport header".into())));
    }
    Ok(ok)
}

fn pair<T: std::str::FromStr + Copy + TryFrom<u32>>(v: &str) -> Option<(T, T)>
where
    u32: From<T>,
{
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim().parse::<T>().ok()?, b.trim().parse::<T>().ok()?),
        None => {
            let a = v.trim().parse::<T>().ok()?;
            (a, T::try_from(u32::from(a) + 1).ok()?)
        }
    };
    Some((a, b))
}

fn parse_one(spec: &str) -> Result<Transport, Unsupported> {
    let mut params = spec.split(';').map(str::trim);
    let proto = params.next().unwrap_or("");
    let tcp = match proto.to_ascii_uppercase().as_str() {
        "RTP/AVP" | "RTP/AVP/UDP" => false,
        "RTP/AVP/TCP" => true,
        other => return Err(Unsupported(format!("transport {other:?} (RTP/AVP only)"))),
    };
    let mut interleaved = None;
    let mut client_port = None;
    let mut record = false;
    let mut ssrc = None;
    for p in params {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        match (k.to_ascii_lowercase().as_str(), v) {
            ("multicast", _) => return Err(Unsupported("multicast".into())),
            ("interleaved", Some(v)) => {
                interleaved =
                    Some(pair::<u8>(v).ok_or_else(|| Unsupported(format!("interleaved={v}")))?)
            }
            ("client_port", Some(v)) => {
                client_port =
                    Some(pair::<u16>(v).ok_or_else(|| Unsupported(format!("client_port={v}")))?)
            }
            ("mode", Some(v)) => {
                let v = v.to_ascii_lowercase();
                record = v == "record" || v == "receive";
            }
            ("ssrc", Some(v)) => ssrc = u32::from_str_radix(v, 16).ok(),
            _ => {}
        }
    }
    let lower = if tcp {
        Lower::Tcp {
            interleaved: interleaved.unwrap_or((0, 1)),
        }
    } else {
        match client_port {
            Some(cp) if cp.0 != 0 => Lower::Udp {
                client_port: cp,
                server_port: None,
            },
            _ => return Err(Unsupported("UDP without client_port".into())),
        }
    };
    Ok(Transport {
        lower,
        record,
        ssrc,
    })
}

impl Transport {
    /// The header value for an answer.
    pub fn to_header(&self) -> String {
        let mut s = match self.lower {
            Lower::Tcp {
                interleaved: (a, b),
            } => format!("RTP/AVP/TCP;unicast;interleaved={a}-{b}"),
            Lower::Udp {
                client_port: (a, b),
                server_port,
            } => {
                let mut s = format!("RTP/AVP;unicast;client_port={a}-{b}");
                if let Some((c, d)) = server_port {
                    s.push_str(&format!(";server_port={c}-{d}"));
                }
                s
            }
        };
        if let Some(ssrc) = self.ssrc {
            s.push_str(&format!(";ssrc={ssrc:08X}"));
        }
        if self.record {
            s.push_str(";mode=record");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_and_gstreamer_transports() {
        let t = parse("RTP/AVP/TCP;unicast;interleaved=0-1;mode=record").unwrap();
        assert_eq!(
            t,
            vec![Transport {
                lower: Lower::Tcp {
                    interleaved: (0, 1)
                },
                record: true,
                ssrc: None
            }]
        );
        let t = parse("RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record").unwrap();
        assert_eq!(
            t[0].lower,
            Lower::Udp {
                client_port: (5000, 5001),
                server_port: None
            }
        );
        // GStreamer rtspsrc lists alternatives.
        let t = parse("RTP/AVP;unicast;client_port=40000-40001;mode=\"PLAY\",RTP/AVP/TCP;unicast;interleaved=2-3").unwrap();
        assert_eq!(t.len(), 2);
        assert!(!t[0].record);
        assert_eq!(
            t[1].lower,
            Lower::Tcp {
                interleaved: (2, 3)
            }
        );
        assert!(parse("RTP/AVP;multicast").is_err());
        assert!(parse("RTP/SAVP;unicast;client_port=1-2").is_err());
        assert!(parse("RTP/AVP;unicast").is_err());
        assert!(parse("RTP/AVP/TCP;interleaved=300-301").is_err());
        assert!(parse("").is_err());
        let t = Transport {
            lower: Lower::Udp {
                client_port: (1, 2),
                server_port: Some((3, 4)),
            },
            record: false,
            ssrc: Some(0xab),
        };
        assert_eq!(
            t.to_header(),
            "RTP/AVP;unicast;client_port=1-2;server_port=3-4;ssrc=000000AB"
        );
        assert_eq!(parse(&t.to_header()).unwrap()[0].ssrc, Some(0xab));
    }
}
