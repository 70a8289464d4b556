//! Durations as written in config: whole seconds (`300`) or text (`"30s"`, `"5m"`, `"1d"`).

use serde::Deserialize;
use std::time::Duration;

/// A duration in config: whole seconds (`300`) or text (`"30s"`, `"5m"`, `"2h"`, `"1d"`, `"1y"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    /// Seconds.
    Seconds(u64),
    /// A number with a unit.
    Text(String),
}

impl RawDuration {
    /// The duration, or why the value is not one.
    pub fn to_duration(&self) -> Result<Duration, String> {
        match self {
            Self::Seconds(s) => Ok(Duration::from_secs(*s)),
            Self::Text(t) => {
                let t = t.trim();
                let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let (num, unit) = t.split_at(split);
                let n: u64 = num.parse().map_err(|_| format!("{t:?} is not a duration like \"30s\", \"5m\", \"1d\""))?;
                let mult = match unit.trim() {
                    "" | "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86_400,
                    "w" => 604_800,
                    "y" => 31_536_000,
                    other => return Err(format!("unknown unit {other:?} in {t:?} (use s, m, h, d, w, y)")),
                };
                n.checked_mul(mult).map(Duration::from_secs).ok_or_else(|| format!("{t:?} is too large"))
            }
        }
    }
}
