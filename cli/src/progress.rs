//! Upload progress: a bar per campaign when stderr is a terminal, plain log lines otherwise
//! (CI logs and pipes get one readable line per step instead of control codes).

use espbridge_core::CampaignId;
use espbridge_core::service::UploadObserver;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

/// Whether progress is drawn as bars (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Reports validation and upload progress. Only campaign ids and counts are shown.
pub struct Progress {
    bars: Option<Mutex<HashMap<CampaignId, ProgressBar>>>,
}

impl Progress {
    pub fn new(interactive: bool) -> Self {
        Self {
            bars: interactive.then(|| Mutex::new(HashMap::new())),
        }
    }

    fn with_bar(&self, campaign: &CampaignId, len: u64, f: impl FnOnce(&ProgressBar)) {
        let Some(bars) = &self.bars else { return };
        let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(campaign.clone()).or_insert_with(|| {
            let bar = ProgressBar::new(len);
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30.cyan/blue}] {pos}/{len} rows uploaded ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_prefix(campaign.to_string());
            bar
        });
        f(bar);
    }
}

/// The upload validates as it reads, so a bar's length is the valid rows read so far until
/// the pass ends ([`UploadObserver::validated`]).
impl UploadObserver for Progress {
    fn validated(&self, campaign: &CampaignId, rows: u64, valid: u64) {
        if self.bars.is_some() {
            self.with_bar(campaign, valid, |b| {
                b.set_length(valid);
                b.finish();
            });
        } else {
            tracing::info!(campaign_id = %campaign, rows, valid, "every row read and validated");
        }
    }

    fn uploaded(&self, campaign: &CampaignId, uploaded: u64, valid: u64) {
        if self.bars.is_some() {
            self.with_bar(campaign, valid, |b| {
                b.set_length(valid.max(uploaded));
                b.set_position(uploaded);
            });
        } else {
            tracing::info!(campaign_id = %campaign, uploaded, valid, "upload progress");
        }
    }
}
