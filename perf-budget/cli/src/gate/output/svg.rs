//! SVG chart primitives of the HTML report: lines, a legend, a chart with axes, number
//! formatting and escaping. Plain string building; no script.

use std::fmt::Write as _;

/// One line of a chart.
pub(super) struct Series<'a> {
    pub(super) name: &'a str,
    pub(super) color: &'a str,
    pub(super) dashed: bool,
    /// Points only (the server's few quantiles), no line.
    pub(super) dots: bool,
    pub(super) points: Vec<(f64, f64)>,
}

pub(super) fn line<'a>(
    name: &'a str,
    color: &'a str,
    dashed: bool,
    points: Vec<(f64, f64)>,
) -> Series<'a> {
    Series {
        name,
        color,
        dashed,
        dots: false,
        points,
    }
}

/// `(quantile, ms)` to `(nines, ms)`: p90 is 1, p99 is 2, the maximum is drawn at 4.5.
pub(super) fn nines(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .map(|&(q, v)| {
            let x = if q >= 1.0 { 4.5 } else { -(1.0 - q).log10() };
            (x.min(4.5), v)
        })
        .collect()
}

pub(super) fn legend(items: &[(&str, &str, bool)]) -> String {
    let mut h = String::from("<p class=\"legend\">");
    for (name, color, dashed) in items {
        let dash = if *dashed { "dashed" } else { "solid" };
        let _ = write!(
            h,
            "<span><b style=\"border-top:3px {dash} {color};display:inline-block;width:2em\"></b> {}</span>",
            esc(name)
        );
    }
    h + "</p>"
}

/// An SVG line chart: x ticks as given, y linear from 0 or logarithmic over the data.
pub(super) fn chart(
    series: &[Series<'_>],
    xticks: &[(f64, &str)],
    ylabel: &str,
    log: bool,
) -> String {
    const W: f64 = 720.0;
    const H: f64 = 260.0;
    const L: f64 = 60.0;
    const B: f64 = 30.0;
    const T: f64 = 24.0;
    let all = || series.iter().flat_map(|s| s.points.iter());
    let ys = all()
        .map(|p| p.1)
        .filter(|y| y.is_finite() && (!log || *y > 0.0));
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    if lo > hi {
        return String::from("<p>no samples</p>");
    }
    let xmax = xticks
        .iter()
        .map(|t| t.0)
        .chain(all().map(|p| p.0))
        .fold(1e-9, f64::max);
    let (y0, y1) = if log {
        (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        )
    } else {
        (0.0, nice_top(hi))
    };
    let fy = |y: f64| if log { y.max(1e-9).log10() } else { y };
    let px = |x: f64| L + x / xmax * (W - L - 10.0);
    let py = |y: f64| T + (1.0 - (fy(y) - y0) / (y1 - y0)) * (H - B - T);
    let mut s = format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\
         <text x=\"4\" y=\"12\">{}</text>",
        esc(ylabel)
    );
    for (x, label) in xticks {
        let _ = write!(
            s,
            "<line x1=\"{X:.1}\" x2=\"{X:.1}\" y1=\"{T}\" y2=\"{b}\" stroke=\"#eaeef2\"/>\
             <text x=\"{X:.1}\" y=\"{t}\" text-anchor=\"middle\">{}</text>",
            esc(label),
            X = px(*x),
            b = H - B,
            t = H - 12.0
        );
    }
    let steps = if log { (y1 - y0) as usize } else { 4 };
    for i in 0..=steps {
        let v = if log {
            10f64.powf(y0 + i as f64)
        } else {
            y1 * i as f64 / 4.0
        };
        let _ = write!(
            s,
            "<line x1=\"{L}\" x2=\"{r}\" y1=\"{Y:.1}\" y2=\"{Y:.1}\" stroke=\"#eaeef2\"/>\
             <text x=\"{t}\" y=\"{Y:.1}\" text-anchor=\"end\">{v}</text>",
            r = W - 10.0,
            t = L - 4.0,
            Y = py(v),
            v = fmt_num(v)
        );
    }
    for se in series {
        let pts: Vec<String> = (se.points.iter())
            .filter(|p| p.1.is_finite() && (!log || p.1 > 0.0))
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if se.dots {
            for p in &pts {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    s,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"4\" fill=\"{}\"/>",
                    se.color
                );
            }
        } else {
            let dash = if se.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"><title>{}</title></polyline>",
                se.color,
                pts.join(" "),
                esc(se.name)
            );
        }
    }
    s + "</svg>"
}

/// The smallest 4 × (a round multiple of 10^k) above `hi`: four round steps on a linear axis.
pub(super) fn nice_top(hi: f64) -> f64 {
    let raw = (hi * 1.05 / 4.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 8.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    4.0 * step
}

pub(super) fn fmt_num(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Escapes text for HTML content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_axes_end_on_round_numbers() {
        assert_eq!(nice_top(200.0), 240.0);
        assert_eq!(nice_top(5000.0), 6000.0);
        assert!((nice_top(3.0) - 3.2).abs() < 1e-9);
    }
}
