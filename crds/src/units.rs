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

/// Splits `"64Mi"` into `(64.0, "Mi")`; the number may be a decimal (`1.5Gi`).
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    num.parse::<f64>().ok().filter(|n| n.is_finite()).map(|n| (n, suffix))
}

fn quantity_multiplier(suffix: &str) -> Option<f64> {
    Some(match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        "Ei" => 1024.0f64.powi(6),
        _ => {
            // Decimal exponent form: 1e3, 5E6.
            let exp = suffix.strip_prefix(['e', 'E'])?.parse::<i32>().ok()?;
            10f64.powi(exp)
        }
    })
}

fn parse_quantity(kind: &'static str, s: &str) -> Result<f64, UnitError> {
    const HINT: &str = "expected a Kubernetes quantity such as 64Mi, 1Gi, 500m or 2";
    let s = s.trim();
    let (n, suffix) = split_number(s).ok_or_else(|| unit_error(kind, s, HINT))?;
    let mult = quantity_multiplier(suffix).ok_or_else(|| unit_error(kind, s, HINT))?;
    if n < 0.0 {
        return Err(unit_error(kind, s, "must not be negative"));
    }
    Ok(n * mult)
}

/// A memory quantity in bytes (rounded up, as Kubernetes does).
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    Ok(parse_quantity("memory quantity", s)?.ceil() as u64)
}

/// A CPU quantity in millicores (rounded up).
pub fn parse_millicores(s: &str) -> Result<u64, UnitError> {
    Ok((parse_quantity("cpu quantity", s)? * 1000.0).ceil() as u64)
}

/// A Go-style duration: a sequence of number+unit, e.g. `30s`, `1m30s`, `250ms`, `1.5h`.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    const HINT: &str = "expected a duration such as 30s, 500ms, 2m or 1h30m";
    let original = s;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(unit_error("duration", original, HINT));
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let n: f64 = num.parse().map_err(|_| unit_error("duration", original, HINT))?;
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(unit_error("duration", original, HINT)),
        };
        total += n * secs;
        rest = tail;
    }
    if total <= 0.0 {
        return Err(unit_error("duration", original, "must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(total))
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
        for input in ["", "Mi", "64MB", "-1Gi", "lots"] {
            let err = parse_bytes(input).unwrap_err().to_string();
            assert!(err.contains("invalid memory quantity"), "{input}: {err}");
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
        for (input, ms) in [("30s", 30_000), ("500ms", 500), ("2m", 120_000), ("1h30m", 5_400_000), ("1.5s", 1500)] {
            assert_eq!(parse_duration(input), Ok(Duration::from_millis(ms)), "{input}");
        }
        for input in ["", "30", "5x", "0s", "s"] {
            assert!(parse_duration(input).is_err(), "{input}");
        }
    }

    #[test]
    fn formats_durations_as_written() {
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
