//! Script data (AMF0) through the `amf` crate, made safe for hostile input by a pre-scan.
//!
//! The `amf` 1.0 decoder recurses once per nesting level, allocates string buffers of whatever
//! length the input claims before reading them, and copies referenced values (so a few bytes of
//! references can expand exponentially), and it also keeps a copy of every complex value in its
//! reference table. [`prescan`] walks the same grammar without allocating and refuses input that
//! would be expensive: lengths past the end, nesting deeper than [`MAX_AMF_DEPTH`], an expanded
//! size (values, copies and references counted) above a budget proportional to the input, and AMF3
//! (the AVM+ marker), whose decoder has the same problems. Only then are the bytes decoded.

use amf::amf0::Value;
use amf::Pair;

use super::error::FlvError;
use crate::error::Diag;

/// Deepest nesting of objects/arrays accepted in script data.
pub const MAX_AMF_DEPTH: usize = 64;

/// Approximate in-memory cost of one decoded value, in bytes.
const NODE_COST: u64 = 64;
/// Absolute cap on the decoded size of one script body.
const MAX_COST: u64 = 256 * 1024 * 1024;

/// A decoded script tag: a name (`onMetaData`, `onCuePoint`, ...) and the values after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptData {
    /// The first string. For `@setDataFrame` followed by a string (as RTMP publishers send
    /// metadata), the second string, with `set_data_frame` true.
    pub name: String,
    /// Whether the body started with `@setDataFrame`.
    pub set_data_frame: bool,
    /// The values after the name.
    pub values: Vec<Value>,
}

impl ScriptData {
    /// Whether this is `onMetaData`.
    pub fn is_metadata(&self) -> bool {
        self.name == "onMetaData"
    }

    /// The properties of the first value when it is an ECMA array or an object, in order.
    pub fn properties(&self) -> Option<impl Iterator<Item = (&str, &Value)> + '_> {
        let entries: &[Pair<String, Value>] = match self.values.first()? {
            Value::EcmaArray { entries } | Value::Object { entries, .. } => entries,
            _ => return None,
        };
        Some(entries.iter().map(|p| (p.key.as_str(), &p.value)))
    }

    /// `onMetaData`'s properties, in order (`None` for other names).
    pub fn metadata(&self) -> Option<impl Iterator<Item = (&str, &Value)> + '_> {
        if self.is_metadata() {
            self.properties()
        } else {
            None
        }
    }

    /// The first property called `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?.find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The first property called `key`, when it is a number.
    pub fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// Decodes a script tag body: a string name, then AMF0 values up to the end of the body. An error
/// ([`FlvError::Script`]) is located in `body`.
pub fn parse_script(body: &[u8]) -> Result<ScriptData, FlvError> {
    let bad = |at: usize, m: String| FlvError::Script(Diag::new(at as u64, m));
    if body.is_empty() {
        return Err(bad(0, "empty script data".into()));
    }
    prescan(body).map_err(FlvError::Script)?;
    let mut dec = amf::amf0::Decoder::new(body);
    let mut values = Vec::new();
    while !dec.inner().is_empty() {
        let at = body.len() - dec.inner().len();
        match dec.decode() {
            Ok(v) => values.push(v),
            Err(e) => return Err(bad(at, format!("amf0 value at script byte {at}: {e}"))),
        }
    }
    let mut values = values.into_iter();
    let name = match values.next() {
        Some(Value::String(s)) => s,
        _ => {
            return Err(bad(
                0,
                "script data does not start with a string name".into(),
            ))
        }
    };
    let mut values: Vec<Value> = values.collect();
    let mut set_data_frame = false;
    let mut name = name;
    if name == "@setDataFrame" {
        if let Some(Value::String(_)) = values.first() {
            if let Value::String(inner) = values.remove(0) {
                name = inner;
                set_data_frame = true;
            }
        }
    }
    Ok(ScriptData {
        name,
        set_data_frame,
        values,
    })
}

/// Walks `body` as a sequence of AMF0 values, as `amf::amf0::Decoder` would, without allocating
/// per value; fails where decoding would be unsafe or too expensive (located in `body`).
pub(crate) fn prescan(body: &[u8]) -> Result<(), Diag> {
    let budget = (body.len() as u64)
        .saturating_mul(16)
        .saturating_add(1024 * 1024)
        .min(MAX_COST);
    let mut s = Scan {
        b: body,
        pos: 0,
        complexes: Vec::new(),
        cost: 0,
        budget,
    };
    while s.pos < body.len() {
        s.value(0)?;
    }
    Ok(())
}

struct Scan<'a> {
    b: &'a [u8],
    pos: usize,
    /// Expanded cost of each complex value, by reference index; `None` while still open.
    complexes: Vec<Option<u64>>,
    /// Total decoded cost so far, including the decoder's reference-table copies.
    cost: u64,
    budget: u64,
}

impl Scan<'_> {
    fn eof(&self, what: &str) -> Diag {
        Diag::new(
            self.pos as u64,
            format!("script data ends inside {what} at byte {}", self.pos),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], Diag> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(self.eof(what));
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Diag> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<usize, Diag> {
        let b = self.take(2, what)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self, what: &str) -> Result<u64, Diag> {
        let b = self.take(4, what)?;
        Ok(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
    }

    fn charge(&mut self, c: u64) -> Result<(), Diag> {
        self.cost = self.cost.saturating_add(c);
        if self.cost > self.budget {
            return Err(Diag::new(
                self.pos as u64,
                format!(
                    "script data would decode to more than {} bytes (at byte {})",
                    self.budget, self.pos
                ),
            ));
        }
        Ok(())
    }

    /// Scans one value; returns its expanded cost.
    fn value(&mut self, depth: usize) -> Result<u64, Diag> {
        let at = self.pos;
        let bad = |m: String| Diag::new(at as u64, m);
        let marker = self.u8("a value marker")?;
        let cost = match marker {
            0x00 => {
                self.take(8, "a number")?;
                NODE_COST
            }
            0x01 => {
                self.take(1, "a boolean")?;
                NODE_COST
            }
            0x02 => {
                let n = self.u16("a string length")?;
                self.take(n, "a string")?;
                NODE_COST + n as u64
            }
            0x05 | 0x06 => NODE_COST,
            0x07 => {
                let i = self.u16("a reference")?;
                match self.complexes.get(i) {
                    Some(Some(c)) => *c,
                    Some(None) => {
                        return Err(bad(format!("circular amf0 reference {i} at byte {at}")))
                    }
                    None => {
                        return Err(bad(format!("amf0 reference {i} out of range at byte {at}")))
                    }
                }
            }
            0x0B => {
                self.take(10, "a date")?;
                NODE_COST
            }
            0x0C | 0x0F => {
                let n = self.u32("a long string length")?;
                let n = usize::try_from(n).map_err(|_| self.eof("a long string"))?;
                self.take(n, "a long string")?;
                NODE_COST + n as u64
            }
            0x03 | 0x08 | 0x0A | 0x10 => {
                if depth >= MAX_AMF_DEPTH {
                    return Err(bad(format!(
                        "amf0 values nested deeper than {MAX_AMF_DEPTH} levels at byte {at}"
                    )));
                }
                let index = self.complexes.len();
                self.complexes.push(None);
                let inner = match marker {
                    0x03 => self.pairs(depth)?,
                    0x08 => {
                        self.take(4, "an ecma array count")?;
                        self.pairs(depth)?
                    }
                    0x10 => {
                        let n = self.u16("a class name length")?;
                        self.take(n, "a class name")?;
                        n as u64 + self.pairs(depth)?
                    }
                    _ => {
                        let count = self.u32("a strict array count")?;
                        let left = (self.b.len() - self.pos) as u64;
                        if count > left {
                            return Err(bad(format!(
                                "strict array of {count} values at byte {at} but only {left} bytes follow"
                            )));
                        }
                        let mut c = 0u64;
                        for _ in 0..count {
                            c = c.saturating_add(self.value(depth + 1)?);
                        }
                        c
                    }
                };
                let total = inner.saturating_add(NODE_COST);
                if let Some(slot) = self.complexes.get_mut(index) {
                    *slot = Some(total);
                }
                // The decoder keeps a copy in its reference table.
                self.charge(total)?;
                total
            }
            0x09 => return Err(bad(format!("unexpected amf0 object end at byte {at}"))),
            0x11 => {
                return Err(bad(format!(
                    "amf3 values (avm+ marker) are not supported in script data (byte {at})"
                )))
            }
            0x04 | 0x0D | 0x0E => {
                return Err(bad(format!(
                    "unsupported amf0 marker 0x{marker:02x} at byte {at}"
                )))
            }
            _ => {
                return Err(bad(format!(
                    "unknown amf0 marker 0x{marker:02x} at byte {at}"
                )))
            }
        };
        self.charge(cost)?;
        Ok(cost)
    }

    /// Key/value pairs up to the empty key + object end marker; returns their cost.
    fn pairs(&mut self, depth: usize) -> Result<u64, Diag> {
        let mut c = 0u64;
        loop {
            let n = self.u16("a property name length")?;
            self.take(n, "a property name")?;
            if n == 0 && self.b.get(self.pos) == Some(&0x09) {
                self.pos += 1;
                return Ok(c);
            }
            c = c
                .saturating_add(n as u64)
                .saturating_add(self.value(depth + 1)?);
        }
    }
}

/// Appends the AMF0 encoding of `v` (never panics: names longer than 65535 bytes are cut at a
/// character boundary).
pub(crate) fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Number(n) => {
            out.push(0x00);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[0x01, u8::from(*b)]),
        Value::String(s) => {
            if s.len() <= 0xFFFF {
                out.push(0x02);
                write_short_str(s, out);
            } else {
                out.push(0x0C);
                write_long_str(s, out);
            }
        }
        Value::Object {
            class_name,
            entries,
        } => {
            match class_name {
                Some(c) => {
                    out.push(0x10);
                    write_short_str(c, out);
                }
                None => out.push(0x03),
            }
            write_pairs(entries.iter().map(|p| (p.key.as_str(), &p.value)), out);
        }
        Value::Null => out.push(0x05),
        Value::Undefined => out.push(0x06),
        Value::EcmaArray { entries } => {
            out.push(0x08);
            out.extend_from_slice(
                &u32::try_from(entries.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes(),
            );
            write_pairs(entries.iter().map(|p| (p.key.as_str(), &p.value)), out);
        }
        Value::Array { entries } => {
            out.push(0x0A);
            out.extend_from_slice(
                &u32::try_from(entries.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes(),
            );
            for e in entries.iter().take(u32::MAX as usize) {
                write_value(e, out);
            }
        }
        Value::Date {
            unix_time,
            time_zone,
        } => {
            out.push(0x0B);
            out.extend_from_slice(&(unix_time.as_millis() as f64).to_be_bytes());
            out.extend_from_slice(&time_zone.to_be_bytes());
        }
        Value::XmlDocument(s) => {
            out.push(0x0F);
            write_long_str(s, out);
        }
        Value::AvmPlus(_) => {
            // Refused by the reader; written as the crate writes it.
            let _ = v.write_to(&mut *out);
        }
    }
}

/// Appends pairs and the end marker (empty name + 0x09).
pub(crate) fn write_pairs<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a Value)>,
    out: &mut Vec<u8>,
) {
    for (k, v) in pairs {
        write_short_str(k, out);
        write_value(v, out);
    }
    out.extend_from_slice(&[0, 0, 0x09]);
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn write_short_str(s: &str, out: &mut Vec<u8>) {
    let s = cut(s, 0xFFFF);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_long_str(s: &str, out: &mut Vec<u8>) {
    let s = cut(s, u32::MAX as usize);
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}
