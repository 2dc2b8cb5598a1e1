//! A minimal JSON reader for `checksums_per_packet.json` (objects, arrays, strings, numbers).
#![allow(dead_code)]

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Obj(Vec<(String, Json)>),
    Arr(Vec<Json>),
    Str(String),
    Num(f64),
    Lit(&'static str),
}

impl Json {
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            _ => &[],
        }
    }
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => "",
        }
    }
    pub fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => f64::NAN,
        }
    }
}

pub fn parse(text: &str) -> Result<Json, String> {
    let b = text.as_bytes();
    let mut at = 0;
    let v = value(b, &mut at)?;
    ws(b, &mut at);
    if at != b.len() {
        return Err(format!("trailing bytes at {at}"));
    }
    Ok(v)
}

fn ws(b: &[u8], at: &mut usize) {
    while b.get(*at).is_some_and(|c| c.is_ascii_whitespace()) {
        *at += 1;
    }
}

fn expect(b: &[u8], at: &mut usize, c: u8) -> Result<(), String> {
    ws(b, at);
    if b.get(*at) == Some(&c) {
        *at += 1;
        Ok(())
    } else {
        Err(format!("expected '{}' at {}", c as char, at))
    }
}

fn value(b: &[u8], at: &mut usize) -> Result<Json, String> {
    ws(b, at);
    match b.get(*at).copied() {
        Some(b'{') => {
            *at += 1;
            let mut items = Vec::new();
            ws(b, at);
            if b.get(*at) == Some(&b'}') {
                *at += 1;
                return Ok(Json::Obj(items));
            }
            loop {
                ws(b, at);
                let Json::Str(k) = string(b, at)? else {
                    unreachable!()
                };
                expect(b, at, b':')?;
                items.push((k, value(b, at)?));
                ws(b, at);
                match b.get(*at) {
                    Some(b',') => *at += 1,
                    Some(b'}') => {
                        *at += 1;
                        return Ok(Json::Obj(items));
                    }
                    _ => return Err(format!("bad object at {at}")),
                }
            }
        }
        Some(b'[') => {
            *at += 1;
            let mut items = Vec::new();
            ws(b, at);
            if b.get(*at) == Some(&b']') {
                *at += 1;
                return Ok(Json::Arr(items));
            }
            loop {
                items.push(value(b, at)?);
                ws(b, at);
                match b.get(*at) {
                    Some(b',') => *at += 1,
                    Some(b']') => {
                        *at += 1;
                        return Ok(Json::Arr(items));
                    }
                    _ => return Err(format!("bad array at {at}")),
                }
            }
        }
        Some(b'"') => string(b, at),
        Some(b't') | Some(b'f') | Some(b'n') => {
            for lit in ["true", "false", "null"] {
                if b[*at..].starts_with(lit.as_bytes()) {
                    *at += lit.len();
                    return Ok(Json::Lit(lit));
                }
            }
            Err(format!("bad literal at {at}"))
        }
        Some(_) => {
            let start = *at;
            while b.get(*at).is_some_and(|c| b"+-.eE0123456789".contains(c)) {
                *at += 1;
            }
            std::str::from_utf8(&b[start..*at])
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Json::Num)
                .ok_or_else(|| format!("bad number at {start}"))
        }
        None => Err("unexpected end".into()),
    }
}

fn string(b: &[u8], at: &mut usize) -> Result<Json, String> {
    expect(b, at, b'"')?;
    let mut out = Vec::new();
    loop {
        match b.get(*at).copied() {
            Some(b'"') => {
                *at += 1;
                return String::from_utf8(out)
                    .map(Json::Str)
                    .map_err(|e| e.to_string());
            }
            Some(b'\\') => {
                let c = b.get(*at + 1).copied().ok_or("bad escape")?;
                out.push(match c {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    other => other, // \" \\ \/ (no \u in this file)
                });
                *at += 2;
            }
            Some(c) => {
                out.push(c);
                *at += 1;
            }
            None => return Err("unterminated string".into()),
        }
    }
}
