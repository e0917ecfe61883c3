//! Kubernetes resource quantities: CPU (`500m`, `0.5`, `2`) and memory (`64Mi`, `1G`, `1048576`).
//!
//! Parsing is exact: a quantity is read as a decimal fraction and multiplied by its suffix in
//! integer arithmetic, so `0.1` is exactly 100 millicores and `0.5Ki` exactly 512 bytes. A value
//! that does not land on a whole unit (finer than 1m of CPU, a fraction of a byte) is refused
//! rather than rounded, so what the user wrote is what the scheduler sees.

use std::fmt;

/// The most CPU one object may ask for: 1000 cores, in millicores.
pub const MAX_CPU_MILLIS: i64 = 1_000_000;

/// The most memory one object may ask for: 1 PiB, in bytes.
pub const MAX_MEMORY_BYTES: i64 = 1 << 50;

/// Which resource a quantity was meant to measure; used in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// CPU, in millicores.
    Cpu,
    /// Memory, in bytes.
    Memory,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Cpu => "CPU",
            Resource::Memory => "memory",
        })
    }
}

/// Why a quantity was refused. Every message quotes the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Nothing was written.
    #[error("invalid {resource} quantity {text:?}: must not be empty")]
    Empty { resource: Resource, text: String },
    /// Not a number with a known suffix.
    #[error("invalid {resource} quantity {text:?}")]
    Invalid { resource: Resource, text: String },
    /// A minus sign on a non-zero value.
    #[error("invalid {resource} quantity {text:?}: must not be negative")]
    Negative { resource: Resource, text: String },
    /// CPU finer than one millicore (`0.0001`, `0.5m`).
    #[error("invalid CPU quantity {text:?}: finer than 1m, the smallest CPU unit")]
    TooPrecise { text: String },
    /// Memory that is not a whole number of bytes (`1.5`, `0.1k` is fine, `0.0001k` is not).
    #[error("invalid memory quantity {text:?}: not a whole number of bytes")]
    FractionalBytes { text: String },
    /// The `m` (milli) suffix used for memory.
    #[error(
        "invalid memory quantity {text:?}: the suffix \"m\" means milli (1/1000), \
         use \"M\" (10^6) or \"Mi\" (2^20)"
    )]
    MilliMemory { text: String },
    /// CPU above [`MAX_CPU_MILLIS`].
    #[error("invalid CPU quantity {text:?}: more than 1000 cores, the maximum")]
    TooMuchCpu { text: String },
    /// Memory that does not fit in 64 bits.
    #[error("invalid {resource} quantity {text:?}: too large")]
    Overflow { resource: Resource, text: String },
}

/// Parses a CPU quantity into millicores: `500m`, `0.5`, `2`, `1.5`.
pub fn parse_cpu(s: &str) -> Result<i64, QuantityError> {
    let text = s.trim();
    let resource = Resource::Cpu;
    let (number, suffix) = split_number(text, resource).map_err(|e| match e {
        QuantityError::Overflow { .. } => QuantityError::TooMuchCpu { text: text.into() },
        other => other,
    })?;
    let millis_per_unit: u128 = match suffix {
        "" => 1000,
        "m" => 1,
        _ => return Err(invalid(resource, text)),
    };
    let millis = number
        .scaled(millis_per_unit)
        .ok_or_else(|| QuantityError::TooMuchCpu { text: text.into() })?
        .ok_or_else(|| QuantityError::TooPrecise { text: text.into() })?;
    if number.negative && millis != 0 {
        return Err(QuantityError::Negative {
            resource,
            text: text.into(),
        });
    }
    if millis > MAX_CPU_MILLIS as u128 {
        return Err(QuantityError::TooMuchCpu { text: text.into() });
    }
    Ok(millis as i64)
}

/// Parses a memory quantity into bytes: `1048576`, `64Mi`, `1G`, `0.5Gi`.
///
/// Decimal suffixes are `k M G T P E`, binary ones `Ki Mi Gi Ti Pi Ei`.
pub fn parse_memory(s: &str) -> Result<i64, QuantityError> {
    let text = s.trim();
    let resource = Resource::Memory;
    let (number, suffix) = split_number(text, resource)?;
    let bytes_per_unit: u128 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "m" => return Err(QuantityError::MilliMemory { text: text.into() }),
        _ => return Err(invalid(resource, text)),
    };
    let overflow = || QuantityError::Overflow {
        resource,
        text: text.into(),
    };
    let bytes = number
        .scaled(bytes_per_unit)
        .ok_or_else(overflow)?
        .ok_or_else(|| QuantityError::FractionalBytes { text: text.into() })?;
    if number.negative && bytes != 0 {
        return Err(QuantityError::Negative {
            resource,
            text: text.into(),
        });
    }
    i64::try_from(bytes).map_err(|_| overflow())
}

/// Formats millicores the way people write them: `500m`, `2`, `1500m`.
pub fn format_cpu(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Formats bytes with the largest binary suffix that divides them exactly (`64Mi`), else as
/// plain bytes (`1000`).
pub fn format_memory(bytes: i64) -> String {
    const SUFFIXES: [(&str, i64); 6] = [
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    if bytes != 0 {
        for (suffix, unit) in SUFFIXES {
            if bytes % unit == 0 {
                return format!("{}{suffix}", bytes / unit);
            }
        }
    }
    bytes.to_string()
}

/// A decimal number as written: `digits / 10^scale`, with its sign.
#[derive(Debug)]
struct Decimal {
    negative: bool,
    digits: u128,
    scale: u32,
}

impl Decimal {
    /// `self * unit`, or `None` on overflow, or `Some(None)` when the result is not whole.
    fn scaled(&self, unit: u128) -> Option<Option<u128>> {
        let numerator = self.digits.checked_mul(unit)?;
        // More than 38 significant fractional digits never lands on a whole unit here.
        let Some(denominator) = 10u128.checked_pow(self.scale) else {
            return Some(None);
        };
        if numerator % denominator == 0 {
            Some(Some(numerator / denominator))
        } else {
            Some(None)
        }
    }
}

fn invalid(resource: Resource, text: &str) -> QuantityError {
    QuantityError::Invalid {
        resource,
        text: text.into(),
    }
}

/// Splits `[+-]digits[.digits]suffix` into the number and its suffix.
fn split_number(text: &str, resource: Resource) -> Result<(Decimal, &str), QuantityError> {
    if text.is_empty() {
        return Err(QuantityError::Empty {
            resource,
            text: text.into(),
        });
    }
    let (negative, unsigned) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(invalid(resource, text));
    }
    // Trailing zeros of the fraction carry no value; dropping them keeps `1.000000000000000000000`
    // from overflowing the scale.
    let fraction = fraction.trim_end_matches('0');
    let overflow = || QuantityError::Overflow {
        resource,
        text: text.into(),
    };
    let mut digits: u128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        let digit = u128::from(c as u8 - b'0');
        digits = digits
            .checked_mul(10)
            .and_then(|d| d.checked_add(digit))
            .ok_or_else(overflow)?;
    }
    let scale = u32::try_from(fraction.len()).map_err(|_| overflow())?;
    Ok((
        Decimal {
            negative,
            digits,
            scale,
        },
        suffix,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_accepts_millicores_cores_and_fractions() {
        assert_eq!(parse_cpu("500m"), Ok(500));
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu("2"), Ok(2000));
        assert_eq!(parse_cpu("1.5"), Ok(1500));
        assert_eq!(parse_cpu(".25"), Ok(250));
        assert_eq!(parse_cpu("0.001"), Ok(1));
        assert_eq!(parse_cpu("1.000000000000000000000000000000"), Ok(1000));
        assert_eq!(parse_cpu(" 250m "), Ok(250));
        assert_eq!(parse_cpu("0"), Ok(0));
        assert_eq!(parse_cpu("-0"), Ok(0));
        assert_eq!(parse_cpu("1000"), Ok(MAX_CPU_MILLIS));
    }

    #[test]
    fn cpu_rejects_each_bad_input_with_its_own_message() {
        let msg = |s: &str| parse_cpu(s).unwrap_err().to_string();
        assert_eq!(msg(""), r#"invalid CPU quantity "": must not be empty"#);
        assert_eq!(
            msg("-1"),
            r#"invalid CPU quantity "-1": must not be negative"#
        );
        assert_eq!(
            msg("-500m"),
            r#"invalid CPU quantity "-500m": must not be negative"#
        );
        assert_eq!(msg("abc"), r#"invalid CPU quantity "abc""#);
        assert_eq!(msg("1.2.3"), r#"invalid CPU quantity "1.2.3""#);
        assert_eq!(msg("."), r#"invalid CPU quantity ".""#);
        assert_eq!(msg("2Gi"), r#"invalid CPU quantity "2Gi""#);
        assert_eq!(msg("m"), r#"invalid CPU quantity "m""#);
        assert!(msg("0.0001").contains("finer than 1m"), "{}", msg("0.0001"));
        assert!(msg("0.5m").contains("finer than 1m"));
        assert!(msg("1001").contains("more than 1000 cores"));
        assert!(msg("99999999999999999999999999999999999999999").contains("1000 cores"));
    }

    #[test]
    fn memory_accepts_plain_decimal_and_binary_suffixes() {
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert_eq!(parse_memory("64Mi"), Ok(64 << 20));
        assert_eq!(parse_memory("1k"), Ok(1000));
        assert_eq!(parse_memory("1M"), Ok(1_000_000));
        assert_eq!(parse_memory("2G"), Ok(2_000_000_000));
        assert_eq!(parse_memory("1T"), Ok(1_000_000_000_000));
        assert_eq!(parse_memory("1P"), Ok(1_000_000_000_000_000));
        assert_eq!(parse_memory("1E"), Ok(1_000_000_000_000_000_000));
        assert_eq!(parse_memory("1Ki"), Ok(1024));
        assert_eq!(parse_memory("0.5Gi"), Ok(1 << 29));
        assert_eq!(parse_memory("1Ti"), Ok(1 << 40));
        assert_eq!(parse_memory("1Pi"), Ok(1 << 50));
        assert_eq!(parse_memory("1Ei"), Ok(1 << 60));
    }

    #[test]
    fn memory_rejects_milli_negative_garbage_and_overflow() {
        let msg = |s: &str| parse_memory(s).unwrap_err().to_string();
        assert!(msg("100m").contains("\"m\" means milli"));
        assert_eq!(
            msg("-1Mi"),
            r#"invalid memory quantity "-1Mi": must not be negative"#
        );
        assert_eq!(msg("lots"), r#"invalid memory quantity "lots""#);
        assert_eq!(msg("1KB"), r#"invalid memory quantity "1KB""#);
        assert_eq!(msg("16Ei"), r#"invalid memory quantity "16Ei": too large"#);
        assert_eq!(
            msg("1.5"),
            r#"invalid memory quantity "1.5": not a whole number of bytes"#
        );
        assert_eq!(msg(""), r#"invalid memory quantity "": must not be empty"#);
    }

    #[test]
    fn cpu_formats_whole_cores_without_suffix() {
        assert_eq!(format_cpu(500), "500m");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_cpu(1500), "1500m");
        assert_eq!(format_cpu(0), "0");
    }

    #[test]
    fn memory_formats_with_the_largest_exact_binary_suffix() {
        assert_eq!(format_memory(64 << 20), "64Mi");
        assert_eq!(format_memory(1536), "1536");
        assert_eq!(format_memory(1 << 30), "1Gi");
        assert_eq!(format_memory(1000), "1000");
        assert_eq!(format_memory(0), "0");
    }

    #[test]
    fn quantities_round_trip() {
        for millis in [0, 1, 250, 999, 1000, 1500, 4000, MAX_CPU_MILLIS] {
            assert_eq!(parse_cpu(&format_cpu(millis)), Ok(millis));
        }
        for bytes in [
            0,
            1,
            1000,
            1024,
            1536,
            64 << 20,
            (1 << 30) + 1,
            MAX_MEMORY_BYTES,
        ] {
            assert_eq!(parse_memory(&format_memory(bytes)), Ok(bytes));
        }
    }
}
