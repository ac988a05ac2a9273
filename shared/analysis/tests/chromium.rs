//! Renders the report in headless Chromium (Debian's `chromium`) and checks
//! in the screenshot that every chart is drawn: each chart's SVG has its own
//! background tint, so its vertical band is the rows where that tint fills
//! much of the width; inside the band we look for the series colours.
//!
//! Skipped (with a message) when Chromium is not installed, unless
//! `ESPBRIDGE_REQUIRE_CHROMIUM=1`. `ESPBRIDGE_SCREENSHOT=FILE.png` keeps a
//! copy of the screenshot (and of the page, as FILE.html).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
mod night_sample;

use espbridge_analysis::html::{PALETTE, TINT_DAILY, TINT_RATES, TINT_UPLIFT, UPLIFT_COLOUR};
use espbridge_analysis::html::{STATE_COLOURS, TINT_FAILED, TINT_STATES};
use espbridge_analysis::{build_report, render_html, render_night_html};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    path.exists().then_some(path)
}

struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }
}

fn decode(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| {
            if channels >= 3 {
                [p[0], p[1], p[2]]
            } else {
                [p[0]; 3]
            }
        })
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

fn hex(c: &str) -> [u8; 3] {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn near(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() <= tol)
}

/// Rows where the tint covers at least a third of the width: (first, last).
fn band(img: &Image, tint: &str) -> Option<(usize, usize)> {
    let tint = hex(tint);
    let rows: Vec<usize> = (0..img.height)
        .filter(|&y| {
            (0..img.width)
                .filter(|&x| near(img.at(x, y), tint, 1))
                .count()
                > img.width / 3
        })
        .collect();
    Some((*rows.first()?, *rows.last()?))
}

fn count_colour(img: &Image, (y0, y1): (usize, usize), colour: &str) -> usize {
    let c = hex(colour);
    (y0..=y1)
        .flat_map(|y| (0..img.width).map(move |x| (x, y)))
        .filter(|&(x, y)| near(img.at(x, y), c, 8))
        .count()
}

fn screenshot(browser: &Path, html: &Path, png_path: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--hide-scrollbars",
            "--window-size=1200,2400",
            &format!("--screenshot={}", png_path.display()),
            &format!("file://{}", html.display()),
        ])
        .output()
        .unwrap();
    assert!(
        png_path.exists(),
        "chromium wrote no screenshot: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn charts_are_drawn_in_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("ESPBRIDGE_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("chromium not installed and ESPBRIDGE_REQUIRE_CHROMIUM=1");
        }
        println!("skipped: chromium not installed");
        return;
    };
    let names = ["Control copy", "Bold subject", "Emoji subject"];
    let report = build_report(&common::sample(&names, 8, true));
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, render_html(&report)).unwrap();
    let png_path = dir.path().join("report.png");
    screenshot(&browser, &html, &png_path);
    if let Some(keep) = std::env::var_os("ESPBRIDGE_SCREENSHOT") {
        std::fs::copy(&png_path, &keep).unwrap();
        std::fs::copy(&html, Path::new(&keep).with_extension("html")).unwrap();
    }
    let img = decode(&png_path);

    let daily = band(&img, TINT_DAILY).expect("daily chart not found");
    let rates = band(&img, TINT_RATES).expect("rates chart not found");
    let uplift = band(&img, TINT_UPLIFT).expect("uplift chart not found");
    assert!(
        daily.1 < rates.0 && rates.1 < uplift.0,
        "bands {daily:?} {rates:?} {uplift:?}"
    );
    for (band, what) in [(daily, "daily"), (rates, "rates"), (uplift, "uplift")] {
        assert!(band.1 - band.0 > 150, "{what} chart is only {band:?} high");
    }
    for (i, name) in names.iter().enumerate() {
        // Above what the legend swatch alone (about 200 pixels) could give:
        // the lines and markers, the bars.
        for (band, what, min) in [(daily, "daily", 1500), (rates, "rates", 5000)] {
            let n = count_colour(&img, band, PALETTE[i]);
            assert!(n >= min, "{what}: {n} pixels of {name}'s colour");
        }
        // Variant colours belong to their charts, not the uplift one.
        assert_eq!(
            count_colour(&img, uplift, PALETTE[i]),
            0,
            "{name} in uplift"
        );
    }
    let n = count_colour(&img, uplift, UPLIFT_COLOUR);
    assert!(n >= 300, "uplift: {n} pixels of the estimate colour");
    assert_eq!(count_colour(&img, daily, UPLIFT_COLOUR), 0);
}

/// The night report: the state bar is drawn with every state's colour in proportion, and the
/// failed campaigns' tinted rows come first (the failures table sits above the campaigns).
#[test]
fn night_report_is_drawn_in_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("ESPBRIDGE_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("chromium not installed and ESPBRIDGE_REQUIRE_CHROMIUM=1");
        }
        println!("skipped: chromium not installed");
        return;
    };
    let night = night_sample::night(24, 4);
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("night.html");
    std::fs::write(&html, render_night_html(&night)).unwrap();
    let png_path = dir.path().join("night.png");
    screenshot(&browser, &html, &png_path);
    if let Some(keep) = std::env::var_os("ESPBRIDGE_NIGHT_SCREENSHOT") {
        std::fs::copy(&png_path, &keep).unwrap();
        std::fs::copy(&html, Path::new(&keep).with_extension("html")).unwrap();
    }
    let img = decode(&png_path);

    let states = band(&img, TINT_STATES).expect("state bar not found");
    assert!(
        states.1 - states.0 > 60,
        "state bar is only {states:?} high"
    );
    let mut pixels = Vec::new();
    for (state, colour) in STATE_COLOURS {
        let n = count_colour(&img, states, colour);
        let campaigns = night.states.get(state).copied().unwrap_or(0);
        assert!(
            (n > 0) == (campaigns > 0),
            "{state}: {n} pixels for {campaigns} campaigns"
        );
        if campaigns > 0 {
            pixels.push((state, n as f64 / campaigns as f64));
        }
    }
    // Each segment's area per campaign is about the same (legend swatches aside).
    let (lo, hi) = pixels.iter().fold((f64::MAX, 0.0f64), |(lo, hi), (_, p)| {
        (lo.min(*p), hi.max(*p))
    });
    assert!(hi / lo < 1.5, "segments out of proportion: {pixels:?}");

    // Failed rows: 4 in the failures table and 4 at the top of the campaigns table.
    let tint = hex(TINT_FAILED);
    let failed_rows: Vec<usize> = (0..img.height)
        .filter(|&y| {
            (0..img.width)
                .filter(|&x| near(img.at(x, y), tint, 1))
                .count()
                > img.width / 2
        })
        .collect();
    assert!(
        failed_rows.len() > 8 * 20,
        "{} pixel rows of failed campaigns",
        failed_rows.len()
    );
    assert!(
        failed_rows[0] > states.1,
        "the failures are listed below the state bar"
    );
    // Rows of one block are apart only by their 1-pixel borders.
    let blocks = failed_rows.windows(2).filter(|w| w[1] > w[0] + 3).count() + 1;
    assert_eq!(blocks, 2, "one block of failed rows per table");
}
