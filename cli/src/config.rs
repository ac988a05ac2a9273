//! The local configuration file: the ESP accounts (as `espbridge_app::parse_accounts` reads
//! them) plus where the local stack keeps its folders and which port it serves on.

use anyhow::{Context, Result};
use espbridge_app::{AccountConfig, parse_accounts};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file's settings besides the accounts.
#[derive(Debug, Default, Deserialize)]
pub struct LocalSettings {
    pub drop_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub port: Option<u16>,
    /// The token `serve` requires on every request (`--token` and `ESPBRIDGE_TOKEN` win).
    pub token: Option<espbridge_api::Token>,
}

/// A parsed configuration file.
#[derive(Debug)]
pub struct FileConfig {
    pub accounts: Vec<AccountConfig>,
    pub local: LocalSettings,
}

/// Reads `path`; relative folders in it are taken relative to the file.
pub fn load(path: &Path) -> Result<FileConfig> {
    let text = read(path)?;
    let accounts = parse_accounts(&text, &path.display().to_string())?;
    let local = local_settings(path, &text)?;
    Ok(FileConfig { accounts, local })
}

/// Reads only the folders and port of `path` (for commands that contact no ESP, such as
/// `report`): a file without `[[accounts]]` is fine here.
pub fn load_local(path: &Path) -> Result<LocalSettings> {
    local_settings(path, &read(path)?)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading configuration {}", path.display()))
}

fn local_settings(path: &Path, text: &str) -> Result<LocalSettings> {
    let origin = path.display().to_string();
    let mut local: LocalSettings =
        toml::from_str(text).with_context(|| format!("reading configuration {origin}"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for dir in [&mut local.drop_dir, &mut local.state_dir]
        .into_iter()
        .flatten()
    {
        if dir.is_relative() {
            *dir = base.join(&*dir);
        }
    }
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/espbridge.toml");
        let c = load(&path).unwrap();
        let esps: Vec<_> = c.accounts.iter().map(|a| a.esp.as_str()).collect();
        assert_eq!(esps, ["emarsys", "bronto"]);
        assert_eq!(c.local.port, Some(8080));
        assert!(
            c.local
                .drop_dir
                .unwrap()
                .starts_with(path.parent().unwrap())
        );
    }

    #[test]
    fn local_settings_need_no_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.toml");
        std::fs::write(&path, "state_dir = \"data/state\"\n").unwrap();
        let local = load_local(&path).unwrap();
        assert_eq!(local.state_dir, Some(dir.path().join("data/state")));
        assert!(load(&path).is_err(), "serve still needs accounts");
    }

    #[test]
    fn the_token_is_read_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "token = \"0123456789abcdef-from-file\"\n").unwrap();
        let local = load_local(&path).unwrap();
        assert_eq!(local.token, Some("0123456789abcdef-from-file".into()));
        assert!(!format!("{local:?}").contains("from-file"));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[[accounts]]\nesp = \"mailchimp\"\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("bad.toml"), "{e}");
        let missing = format!("{:#}", load(&dir.path().join("none.toml")).unwrap_err());
        assert!(missing.contains("none.toml"), "{missing}");
    }
}
