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

/// Chart width, height and the left, bottom and top margins, in pixels.
const W: f64 = 720.0;
const H: f64 = 260.0;
const L: f64 = 60.0;
const B: f64 = 30.0;
const T: f64 = 24.0;

/// An SVG line chart: x ticks as given, y linear from 0 or logarithmic over the data.
pub(super) fn chart(
    series: &[Series<'_>],
    xticks: &[(f64, &str)],
    ylabel: &str,
    log: bool,
) -> String {
    let Some(axes) = Axes::fit(series, xticks, log) else {
        return String::from("<p>no samples</p>");
    };
    let mut s = format!(
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\
         <text x=\"4\" y=\"12\">{}</text>",
        esc(ylabel)
    );
    axes.xgrid(&mut s, xticks);
    axes.ygrid(&mut s);
    for se in series {
        axes.draw(&mut s, se);
    }
    s + "</svg>"
}

/// A chart's scales: x linear from 0 to `xmax`, y from `y0` to `y1` (decades when `log`).
struct Axes {
    /// Whether y is logarithmic.
    log: bool,
    /// The largest x drawn.
    xmax: f64,
    /// The bottom of the y axis (a decade exponent when `log`).
    y0: f64,
    /// The top of the y axis (a decade exponent when `log`).
    y1: f64,
}

impl Axes {
    /// Scales spanning the ticks and the finite (on a log axis, positive) points; `None`
    /// when there are no such points.
    fn fit(series: &[Series<'_>], xticks: &[(f64, &str)], log: bool) -> Option<Self> {
        let all = || series.iter().flat_map(|s| s.points.iter());
        let ys = all()
            .map(|p| p.1)
            .filter(|y| y.is_finite() && (!log || *y > 0.0));
        let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
        if lo > hi {
            return None;
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
        Some(Self { log, xmax, y0, y1 })
    }

    /// The x pixel of `x`.
    fn px(&self, x: f64) -> f64 {
        L + x / self.xmax * (W - L - 10.0)
    }

    /// The y pixel of `y`.
    fn py(&self, y: f64) -> f64 {
        let fy = if self.log { y.max(1e-9).log10() } else { y };
        T + (1.0 - (fy - self.y0) / (self.y1 - self.y0)) * (H - B - T)
    }

    /// Vertical grid lines with their labels under the plot.
    fn xgrid(&self, s: &mut String, xticks: &[(f64, &str)]) {
        for (x, label) in xticks {
            let _ = write!(
                s,
                "<line x1=\"{X:.1}\" x2=\"{X:.1}\" y1=\"{T}\" y2=\"{b}\" stroke=\"#eaeef2\"/>\
                 <text x=\"{X:.1}\" y=\"{t}\" text-anchor=\"middle\">{}</text>",
                esc(label),
                X = self.px(*x),
                b = H - B,
                t = H - 12.0
            );
        }
    }

    /// Horizontal grid lines with their values: one per decade on a log axis, else four steps.
    fn ygrid(&self, s: &mut String) {
        let steps = if self.log {
            (self.y1 - self.y0) as usize
        } else {
            4
        };
        for i in 0..=steps {
            let v = if self.log {
                10f64.powf(self.y0 + i as f64)
            } else {
                self.y1 * i as f64 / 4.0
            };
            let _ = write!(
                s,
                "<line x1=\"{L}\" x2=\"{r}\" y1=\"{Y:.1}\" y2=\"{Y:.1}\" stroke=\"#eaeef2\"/>\
                 <text x=\"{t}\" y=\"{Y:.1}\" text-anchor=\"end\">{v}</text>",
                r = W - 10.0,
                t = L - 4.0,
                Y = self.py(v),
                v = fmt_num(v)
            );
        }
    }

    /// One series: dots, or a (dashed) polyline titled with its name.
    fn draw(&self, s: &mut String, se: &Series<'_>) {
        let pts: Vec<String> = (se.points.iter())
            .filter(|p| p.1.is_finite() && (!self.log || p.1 > 0.0))
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
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
