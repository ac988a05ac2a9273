//! Campaign analysis (issue 6).
