//! The digest's chart: daily tickets opened and resolved over the period as bars, with the
//! open backlog as a line, drawn in-process to a PNG with a bundled font (DejaVu Sans), so no
//! system fonts or tools are needed.
//!
//! Owns the picture only: its size, colours, labels and legend. The figures come from
//! `core::digest::daily`; posting it is the adapters'.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::core::digest::Day;

/// Width of the chart in pixels.
pub const WIDTH: u32 = 1200;
/// Height of the chart in pixels.
pub const HEIGHT: u32 = 600;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// Nothing to draw.
    #[error("the period has no days to draw")]
    Empty,
    /// Drawing failed.
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("encoding the chart failed: {0}")]
    Encode(String),
}

static FONT: Once = Once::new();

fn register() {
    FONT.call_once(|| {
        // The font is compiled in; registering it cannot fail for a valid TTF.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

const OPENED: RGBColor = RGBColor(66, 133, 244);
const RESOLVED: RGBColor = RGBColor(52, 168, 83);
const BACKLOG: RGBColor = RGBColor(234, 67, 53);

/// Draws the days as a PNG titled `title`.
pub fn png(title: &str, days: &[Day]) -> Result<Vec<u8>, ChartError> {
    if days.is_empty() {
        return Err(ChartError::Empty);
    }
    register();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, days).map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    let image = image::RgbImage::from_raw(WIDTH, HEIGHT, rgb)
        .ok_or_else(|| ChartError::Encode("buffer size".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageOutputFormat::Png)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    days: &[Day],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let top = days
        .iter()
        .map(|d| d.opened.max(d.resolved).max(d.backlog))
        .max()
        .unwrap_or(0)
        .max(1);
    let y_max = (top as f64 * 1.15).ceil() as u32 + 1;
    let n = days.len() as u32;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 28).into_font().style(FontStyle::Bold))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..n * 3, 0u32..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // One tick per bar slot; only each day's middle slot is labelled.
        .x_labels((n * 3) as usize)
        .x_label_formatter(&|x| {
            if x % 3 == 1 {
                days.get((x / 3) as usize)
                    .map(|d| d.date.format("%a %d %b").to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("tickets")
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    chart
        .draw_series(days.iter().enumerate().map(|(i, d)| {
            let x = i as u32 * 3;
            Rectangle::new([(x, 0), (x + 1, d.opened as u32)], OPENED.filled())
        }))?
        .label("opened")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], OPENED.filled()));
    chart
        .draw_series(days.iter().enumerate().map(|(i, d)| {
            let x = i as u32 * 3 + 1;
            Rectangle::new([(x, 0), (x + 1, d.resolved as u32)], RESOLVED.filled())
        }))?
        .label("resolved")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], RESOLVED.filled()));
    chart
        .draw_series(LineSeries::new(
            days.iter()
                .enumerate()
                .map(|(i, d)| (i as u32 * 3 + 1, d.backlog as u32)),
            BACKLOG.stroke_width(3),
        ))?
        .label("open at the end of the day")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BACKLOG.stroke_width(3)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
