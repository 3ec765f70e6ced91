//! SVG plots (plotters, no system fonts needed): the read-latency CDF of every strategy on one
//! log-scaled axis, and a histogram of staleness (acknowledgement → the author first sees its
//! comment) per strategy.

use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::CheckError;
use crate::report::summary::StrategySummary;
use crate::report::Report;

/// The size of each plot, in pixels.
const PLOT_WIDTH_PX: u32 = 960;
const PLOT_HEIGHT_PX: u32 = 560;
/// Width of one staleness bar.
const STALENESS_BIN_MS: u64 = 250;
/// Latencies below this are drawn at it (a log axis has no zero).
const LATENCY_MS_MIN: f64 = 0.1;

pub const LATENCY_CDF_FILE: &str = "read-latency-cdf.svg";
pub const STALENESS_FILE: &str = "staleness-histogram.svg";

type Drawn = Result<(), Box<dyn Error>>;

/// Writes both plots into `dir` (created when missing); returns their paths.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, CheckError> {
    std::fs::create_dir_all(dir).map_err(|e| CheckError::io("create", dir, e))?;
    let plot_error =
        |path: &Path, e: Box<dyn Error>| CheckError::Plot { path: path.to_owned(), message: e.to_string() };
    let cdf = dir.join(LATENCY_CDF_FILE);
    latency_cdf(&report.strategies, &cdf).map_err(|e| plot_error(&cdf, e))?;
    let staleness = dir.join(STALENESS_FILE);
    staleness_histogram(&report.strategies, &staleness).map_err(|e| plot_error(&staleness, e))?;
    Ok(vec![cdf, staleness])
}

fn colour(index: usize) -> RGBAColor {
    Palette99::pick(index).to_rgba()
}

fn latency_cdf(strategies: &[StrategySummary], path: &Path) -> Drawn {
    let root = SVGBackend::new(path, (PLOT_WIDTH_PX, PLOT_HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE)?;
    let points = |s: &StrategySummary| -> Vec<(f64, f64)> {
        s.read_latency_cdf.iter().map(|(ms, q)| (ms.max(LATENCY_MS_MIN), *q)).collect()
    };
    let x_max = strategies.iter().flat_map(points).map(|(ms, _)| ms).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption("Read latency, cumulative, by strategy", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((LATENCY_MS_MIN..x_max).log_scale(), 0f64..1f64)?;
    chart.configure_mesh().x_desc("read latency (ms, log scale)").y_desc("share of reads at or below").draw()?;
    for (index, summary) in strategies.iter().enumerate() {
        let style = colour(index).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points(summary), style))?
            .label(summary.strategy.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Counts per `STALENESS_BIN_MS` bin, as (bin start in seconds, count).
fn bins(values_ms: &[u64]) -> Vec<(f64, u32)> {
    let mut counts: std::collections::BTreeMap<u64, u32> = std::collections::BTreeMap::new();
    for value in values_ms {
        *counts.entry(value / STALENESS_BIN_MS).or_default() += 1;
    }
    counts.into_iter().map(|(bin, n)| ((bin * STALENESS_BIN_MS) as f64 / 1_000.0, n)).collect()
}

fn staleness_histogram(strategies: &[StrategySummary], path: &Path) -> Drawn {
    let root = SVGBackend::new(path, (PLOT_WIDTH_PX, PLOT_HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE)?;
    let binned: Vec<Vec<(f64, u32)>> = strategies.iter().map(|s| bins(&s.staleness_ms)).collect();
    let bin_s = STALENESS_BIN_MS as f64 / 1_000.0;
    let x_max = binned.iter().flatten().map(|(start, _)| start + bin_s).fold(1.0, f64::max);
    let y_max = binned.iter().flatten().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let caption = if binned.iter().all(Vec::is_empty) {
        "Staleness: no read missed its author's own comment".to_owned()
    } else {
        format!("Staleness of own comments (acknowledged → first seen), {STALENESS_BIN_MS} ms bins")
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0u32..y_max + y_max / 10 + 1)?;
    chart.configure_mesh().x_desc("staleness (s)").y_desc("comments").draw()?;
    for (index, (summary, bars)) in strategies.iter().zip(&binned).enumerate() {
        let fill = colour(index).mix(0.45).filled();
        let legend = colour(index).filled();
        chart
            .draw_series(bars.iter().map(|(start, n)| Rectangle::new([(*start, 0), (start + bin_s, *n)], fill)))?
            .label(format!("{} ({} comments)", summary.strategy, summary.staleness_ms.len()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], legend));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_falls_into_bins() {
        assert_eq!(bins(&[0, 249, 250, 1_900]), vec![(0.0, 2), (0.25, 1), (1.75, 1)]);
        assert!(bins(&[]).is_empty());
    }
}
