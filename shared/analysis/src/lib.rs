//! Campaign analysis (issue 6). Docs to be written.
pub mod html;
pub mod input;
pub mod report;
pub mod rules;
pub mod stats;

pub use html::render_html;
pub use input::*;
pub use report::*;
