//! Sizes, speeds, ETAs and progress bars as a status message shows them.

use std::time::Duration;

const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// A byte count in binary units with one decimal: `512 B`, `1.5 KiB`, `1.5 GiB`.
///
/// ```
/// assert_eq!(mltb_telegram::format::human_size(1_610_612_736), "1.5 GiB");
/// assert_eq!(mltb_telegram::format::human_size(512), "512 B");
/// ```
pub fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss above 2^53 bytes is far below the one decimal shown.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    // 1023.96 KiB would print as "1024.0 KiB": carry into the next unit.
    if (value * 10.0).round() >= 10240.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A transfer speed: `human_size` per second, e.g. `1.5 MiB/s`.
pub fn speed(bytes_per_second: u64) -> String {
    format!("{}/s", human_size(bytes_per_second))
}

/// A duration as a status line shows it: `45s`, `3m 5s`, `2h 0m 7s`, `1d 2h 3m`; `-` when
/// unknown (`None`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mltb_telegram::format::eta(Some(Duration::from_secs(3725))), "1h 2m 5s");
/// assert_eq!(mltb_telegram::format::eta(None), "-");
/// ```
pub fn eta(remaining: Option<Duration>) -> String {
    let Some(remaining) = remaining else { return "-".to_string() };
    let s = remaining.as_secs();
    let (d, h, m, s) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// The widest [`progress_bar`], in cells: a Telegram message holds 4 096 characters.
const MAX_BAR_WIDTH: usize = 1_000;

/// A bar of `width` cells (at most 1 000), `■` for done and `□` for left; `fraction` is
/// clamped to 0..=1 and NaN counts as 0.
///
/// ```
/// assert_eq!(mltb_telegram::format::progress_bar(0.5, 10), "■■■■■□□□□□");
/// ```
pub fn progress_bar(fraction: f64, width: usize) -> String {
    let width = width.min(MAX_BAR_WIDTH);
    let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    // fraction in 0..=1 and width is small: the product fits usize.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let done = ((fraction * width as f64).floor() as usize).min(width);
    // Both glyphs are 3 bytes in UTF-8.
    let mut bar = String::with_capacity(width.saturating_mul(3));
    bar.extend(std::iter::repeat_n('■', done));
    bar.extend(std::iter::repeat_n('□', width - done));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
        assert_eq!(speed(3 * 1024 * 1024 / 2), "1.5 MiB/s");
    }

    #[test]
    fn etas() {
        assert_eq!(eta(Some(Duration::from_secs(0))), "0s");
        assert_eq!(eta(Some(Duration::from_secs(185))), "3m 5s");
        assert_eq!(eta(Some(Duration::from_secs(7207))), "2h 0m 7s");
        assert_eq!(eta(Some(Duration::from_secs(93_780))), "1d 2h 3m");
    }

    #[test]
    fn bars() {
        assert_eq!(progress_bar(-1.0, 4), "□□□□");
        assert_eq!(progress_bar(f64::NAN, 4), "□□□□");
        assert_eq!(progress_bar(2.0, 4), "■■■■");
        assert_eq!(progress_bar(0.99, 4), "■■■□");
        assert_eq!(progress_bar(0.5, 0), "");
    }

    #[test]
    fn bars_are_at_most_a_thousand_cells() {
        let full = progress_bar(0.5, 1_000);
        assert_eq!(full.chars().count(), 1_000);
        assert_eq!(full.chars().filter(|&c| c == '■').count(), 500);
        for width in [1_001, 1 << 40, usize::MAX] {
            assert_eq!(progress_bar(0.5, width), full, "width {width}");
        }
    }
}
