//! Timer fields as Calico writes them: Go durations (`30s`, `2m`, `1m30s`, `1.5m`),
//! or whole seconds as plain numbers. Both read into seconds.

use serde::Deserializer;

/// Seconds in `text`, a Go duration (`h`, `m`, `s`, `ms`, `us`, `ns` units, decimals
/// allowed) of whole seconds up to 65535, or a plain number of seconds.
pub fn parse_seconds(text: &str) -> Result<u16, String> {
    let bad = |why: &str| format!("{text:?} is not a duration: {why} (write 30, 30s, 2m or 1m30s)");
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return u16::try_from(n).map_err(|_| bad("more than 65535 s"));
    }
    if t.is_empty() {
        return Err(bad("empty"));
    }
    let mut rest = t;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("a number without a unit"))?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad("a number is missing"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        };
        nanos += value * scale;
        rest = &rest[unit_len..];
    }
    let secs = nanos / 1e9;
    if (secs - secs.round()).abs() > 1e-9 {
        return Err(bad("not a whole number of seconds"));
    }
    if secs > f64::from(u16::MAX) {
        return Err(bad("more than 65535 s"));
    }
    Ok(secs.round() as u16)
}

/// Reads a number or a duration text while the parser is at the value, so an
/// error names the field and its line.
struct SecondsVisitor;

impl serde::de::Visitor<'_> for SecondsVisitor {
    type Value = u16;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("whole seconds (30) or a duration (30s, 2m, 1m30s)")
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u16, E> {
        u16::try_from(n).map_err(|_| E::custom(format!("{n} is more than 65535 s")))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u16, E> {
        u16::try_from(n).map_err(|_| E::custom(format!("{n} is not a number of seconds from 0 to 65535")))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u16, E> {
        parse_seconds(text).map_err(E::custom)
    }
}

/// For `#[serde(deserialize_with = "duration::seconds")]`.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    d.deserialize_any(SecondsVisitor)
}

struct OptionVisitor;

impl<'de> serde::de::Visitor<'de> for OptionVisitor {
    type Value = Option<u16>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        SecondsVisitor.expecting(f)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<u16>, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<u16>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u16>, D::Error> {
        seconds(d).map(Some)
    }
}

/// The same for an optional field (with `#[serde(default)]`): `null` is none.
pub fn opt_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    d.deserialize_option(OptionVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_plain_seconds() {
        for (text, secs) in [
            ("30", 30),
            ("30s", 30),
            ("2m", 120),
            ("1m30s", 90),
            ("1.5m", 90),
            ("120s", 120),
            ("1h", 3600),
            ("1500ms", 0),
            ("0s", 0),
        ] {
            match parse_seconds(text) {
                Ok(s) => assert_eq!(s, secs, "{text}"),
                Err(e) => assert_eq!(text, "1500ms", "{e}"),
            }
        }
        assert!(parse_seconds("1500ms").unwrap_err().contains("whole number"));
        assert!(parse_seconds("30x").unwrap_err().contains("unknown unit \"x\""));
        assert!(parse_seconds("s").is_err());
        assert!(parse_seconds("20h").unwrap_err().contains("65535"));
    }

    #[derive(serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "opt_seconds")]
        t: Option<u16>,
    }

    #[test]
    fn optional_fields_take_null_numbers_and_texts() {
        let t = |json: &str| serde_json::from_str::<T>(json).map(|t| t.t).map_err(|e| e.to_string());
        assert_eq!(t(r#"{"t": null}"#), Ok(None));
        assert_eq!(t("{}"), Ok(None));
        assert_eq!(t(r#"{"t": 30}"#), Ok(Some(30)));
        assert_eq!(t(r#"{"t": "2m"}"#), Ok(Some(120)));
        assert!(t(r#"{"t": -1}"#).is_err());
    }
}
