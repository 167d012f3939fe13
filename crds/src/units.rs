//! Parsing of Kubernetes quantities and Go-style durations, so that `spore up` and the
//! shim read `64Mi`, `500m` and `30s` exactly as the apiserver and kubelet do.

use std::time::Duration;

/// A quantity or duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct UnitError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn unit_error(kind: &'static str, value: &str, reason: &'static str) -> UnitError {
    UnitError { kind, value: value.to_string(), reason }
}

/// Splits `"64Mi"` into `(64.0, "Mi")`; the number may be signed and a decimal (`1.5Gi`, `-1`).
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    num.parse::<f64>().ok().filter(|n| n.is_finite()).map(|n| (n, suffix))
}

/// `n` times what `suffix` stands for; small units divide, so that `1m` is exactly 1/1000.
fn scale(n: f64, suffix: &str) -> Option<f64> {
    let binary = |power: i32| n * 1024f64.powi(power);
    Some(match suffix {
        "" => n,
        "n" => n / 1e9,
        "u" => n / 1e6,
        "m" => n / 1e3,
        "k" => n * 1e3,
        "M" => n * 1e6,
        "G" => n * 1e9,
        "T" => n * 1e12,
        "P" => n * 1e15,
        "E" => n * 1e18,
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            // Decimal exponent form: 1e3, 5E6, 1e-3.
            let exp = suffix.strip_prefix(['e', 'E'])?.parse::<i32>().ok()?;
            if exp < 0 { n / 10f64.powi(-exp) } else { n * 10f64.powi(exp) }
        }
    })
}

/// What a quantity that does not parse is told.
const QUANTITY_HINT: &str = "expected a Kubernetes quantity such as 64Mi, 1Gi, 500m or 2";
/// The reason of a negative quantity's error.
pub const NEGATIVE: &str = "must not be negative";

/// The value of a Kubernetes quantity (`64Mi`, `500m`, `-1`, `1e3`), signed, as
/// `resource.ParseQuantity` reads it: no whitespace, no other suffixes.
pub fn quantity_value(kind: &'static str, s: &str) -> Result<f64, UnitError> {
    let (n, suffix) = split_number(s).ok_or_else(|| unit_error(kind, s, QUANTITY_HINT))?;
    scale(n, suffix).ok_or_else(|| unit_error(kind, s, QUANTITY_HINT))
}

fn parse_quantity(kind: &'static str, s: &str) -> Result<f64, UnitError> {
    let value = quantity_value(kind, s)?;
    if value < 0.0 {
        return Err(unit_error(kind, s, NEGATIVE));
    }
    Ok(value)
}

/// A memory quantity in bytes (rounded up, as Kubernetes does).
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    Ok(parse_quantity("memory quantity", s)?.ceil() as u64)
}

/// A CPU quantity in millicores (rounded up).
pub fn parse_millicores(s: &str) -> Result<u64, UnitError> {
    Ok((parse_quantity("cpu quantity", s)? * 1000.0).ceil() as u64)
}

/// The longest duration Go (and so Kubernetes' CEL `duration()`) represents: 2^63-1 ns.
const MAX_DURATION_NANOS: f64 = i64::MAX as f64;

/// A Go-style duration: a sequence of number+unit, e.g. `30s`, `1m30s`, `250ms`, `1.5h`. The
/// grammar is the CRD's (`^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$`) and the value is Go's
/// (each part truncated to whole nanoseconds), so that `spore validate` and the apiserver
/// accept the same strings.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    const HINT: &str = "expected a duration such as 30s, 500ms, 2m or 1h30m";
    let invalid = || unit_error("duration", s, HINT);
    let mut rest = s;
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let (number, tail) = split_decimal(rest).ok_or_else(invalid)?;
        let unit_end = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let unit_nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        nanos += (number * unit_nanos).floor();
        rest = tail;
    }
    if nanos > MAX_DURATION_NANOS {
        return Err(unit_error("duration", s, "is longer than the longest duration, 2562047h"));
    }
    if nanos < 1.0 {
        return Err(unit_error("duration", s, "must be greater than zero"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Splits `"1.5h"` into `(1.5, "h")`: digits, then optionally `.` and more digits.
fn split_decimal(s: &str) -> Option<(f64, &str)> {
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
    let whole = digits(s);
    let fraction = match s[whole..].strip_prefix('.') {
        Some(rest) if digits(rest) > 0 => 1 + digits(rest),
        Some(_) => return None,
        None => 0,
    };
    if whole == 0 {
        return None;
    }
    let end = whole + fraction;
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// Formats a duration the way users wrote it: `30s`, `1.5s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memory_quantities() {
        for (input, bytes) in [
            ("64Mi", 64 << 20),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 << 29),
            ("128M", 128_000_000),
            ("100", 100),
            ("1e3", 1000),
            ("500m", 1),
        ] {
            assert_eq!(parse_bytes(input), Ok(bytes), "{input}");
        }
    }

    #[test]
    fn rejects_bad_quantities_with_a_hint() {
        for input in ["", "Mi", "64MB", "-1Gi", "lots", " 64Mi", "64Mi ", "0x10", "1e1.5", "64mi"] {
            let err = parse_bytes(input).unwrap_err().to_string();
            assert!(err.contains("invalid memory quantity"), "{input}: {err}");
        }
        assert_eq!(parse_bytes("-1Mi").unwrap_err().reason, NEGATIVE);
    }

    #[test]
    fn quantity_values_are_signed_and_take_every_kubernetes_suffix() {
        for (input, value) in [("-1Mi", -1048576.0), ("+2", 2.0), (".5k", 500.0), ("5.", 5.0), ("1e-3", 0.001)] {
            assert_eq!(quantity_value("q", input), Ok(value), "{input}");
        }
        for (input, millicores) in [("1000000n", 1), ("2000u", 2), ("1m", 1), ("0.1m", 1), ("1.5", 1500)] {
            assert_eq!(parse_millicores(input), Ok(millicores), "{input}");
        }
    }

    #[test]
    fn parses_cpu_as_millicores() {
        assert_eq!(parse_millicores("500m"), Ok(500));
        assert_eq!(parse_millicores("2"), Ok(2000));
        assert_eq!(parse_millicores("0.25"), Ok(250));
    }

    #[test]
    fn parses_go_durations() {
        for (input, ms) in [
            ("30s", 30_000),
            ("500ms", 500),
            ("2m", 120_000),
            ("1h30m", 5_400_000),
            ("1.5s", 1500),
            ("1000us", 1),
            ("1000µs", 1),
            ("2562047h", 2562047 * 3_600_000),
        ] {
            assert_eq!(parse_duration(input), Ok(Duration::from_millis(ms)), "{input}");
        }
        // What the CRD's pattern refuses (Go would take `.5s`, `1.s` and `0`), and what Go
        // cannot represent.
        for input in ["", "30", "5x", "s", " 30s", "30s ", ".5s", "1.s", "-1s", "+1s", "1h.5m", "1S", "2562048h"] {
            assert!(parse_duration(input).is_err(), "{input}");
        }
    }

    #[test]
    fn zero_durations_are_refused_after_go_truncates_to_nanoseconds() {
        for input in ["0s", "0h0m0s", "0.0001ns", "0.5ns"] {
            let err = parse_duration(input).unwrap_err();
            assert_eq!(err.reason, "must be greater than zero", "{input}");
        }
        assert_eq!(parse_duration("1.5ns"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn formats_durations_as_written() {
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
