//! SFTP upload to the org's `upload` folder, where Silverpop's bulk import (ImportList,
//! ImportTable) reads its source and mapping files (reference A: "Files must already be in the
//! SFTP `upload` directory"; host `transfer{N}.silverpop.com`, the pod's "transfer" twin).
//!
//! One [`SftpTarget::upload`] is one SSH connection: connect, check the host key against the
//! configured one (a mismatch is refused before any credential is sent), authenticate with the
//! account's password or private key, open the SFTP subsystem, write `upload/<name>` (created or
//! truncated, so a repeated upload leaves the same file) from a reader in chunks of
//! [`CHUNK_BYTES`], close, disconnect. Memory stays bounded whatever the file's size: one chunk,
//! plus russh-sftp's pipelined writes, whose unacknowledged count it caps (a write refused by
//! the server surfaces on a later write or at the close). Every
//! network step has a deadline. Errors name the step and the file name, never a byte of the
//! file.
//!
//! Why `russh` and `russh-sftp`: pure Rust on tokio (the upload's runtime), so the Lambda
//! cross-build for arm64 needs no C SSH or OpenSSL library; maintained and widely used; the
//! host key goes through a callback that can refuse it before authentication; password and
//! OpenSSH private keys (Ed25519, RSA, optionally encrypted) are both supported; and the same
//! pair provides the server side the simulator's embedded SFTP endpoint runs on. `ssh2` binds
//! the C libssh2 (blocking, OpenSSL to cross-compile); `openssh` drives an `ssh` binary, which a
//! Lambda does not have.

use espbridge_esp_kit::{ExposeSecret, Secret};
use russh::client::{self, AuthResult, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The folder Silverpop imports from.
pub const UPLOAD_DIR: &str = "upload";
/// The folder Silverpop leaves files for the org in (exports; an import job's error file, see
/// [`crate::bulk`]).
pub const DOWNLOAD_DIR: &str = "download";
/// Bytes read from the source and written per SFTP write: the memory one upload holds.
pub const CHUNK_BYTES: usize = 32 * 1024;
/// The longest file name accepted.
const MAX_NAME_LEN: usize = 128;

/// Why an SFTP upload failed. No variant carries file contents.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error("SFTP host key mismatch: the server presented {presented}, not the configured key")]
    HostKeyMismatch { presented: String },
    #[error("SFTP authentication refused")]
    AuthRefused,
    #[error("SFTP {step} failed: {message}")]
    Transport { step: &'static str, message: String },
    #[error("SFTP {step} of {file} failed: {message}")]
    File {
        step: &'static str,
        file: String,
        message: String,
    },
    #[error("SFTP {step} timed out after {after:?}")]
    Timeout { step: &'static str, after: Duration },
    #[error("reading the upload source failed: {0}")]
    Source(std::io::ErrorKind),
    #[error("SFTP download of {file} is larger than {max} bytes")]
    TooLarge { file: String, max: u64 },
}

impl SftpError {
    /// Transport failures and timeouts may pass; a wrong key or credentials do not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transport { .. } | Self::File { .. } | Self::Timeout { .. }
        )
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SftpConfigError {
    #[error(
        "host key must be an OpenSSH public key (`ssh-ed25519 AAAA…`) or a SHA256 fingerprint \
         (`SHA256:…`)"
    )]
    HostKey,
    #[error("private key is not an OpenSSH private key, or its passphrase is wrong")]
    PrivateKey,
    #[error("file name must be 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 . _ - and not start with a dot")]
    FileName,
}

/// The server's expected host key: the whole public key, or its SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    PublicKey(Box<PublicKey>),
    Sha256(String),
}

impl HostKey {
    pub fn parse(s: &str) -> Result<Self, SftpConfigError> {
        let s = s.trim();
        if let Some(b64) = s.strip_prefix("SHA256:") {
            // Written with or without the base64 padding (OpenSSH omits it).
            let b64 = b64.trim_end_matches('=');
            if b64.is_empty()
                || !b64
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
            {
                return Err(SftpConfigError::HostKey);
            }
            return Ok(Self::Sha256(b64.to_owned()));
        }
        PublicKey::from_openssh(s)
            .map(|k| Self::PublicKey(Box::new(k)))
            .map_err(|_| SftpConfigError::HostKey)
    }

    fn matches(&self, presented: &PublicKey) -> bool {
        match self {
            Self::PublicKey(k) => k.key_data() == presented.key_data(),
            Self::Sha256(b64) => fingerprint(presented).strip_prefix("SHA256:") == Some(b64),
        }
    }
}

/// `SHA256:…` as OpenSSH prints it (no padding).
fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// How the account logs in to SFTP (its API user; Silverpop takes the same credentials).
#[derive(Clone)]
pub enum SftpAuth {
    Password(Secret),
    PrivateKey(Arc<PrivateKey>),
}

impl SftpAuth {
    /// An OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), with its passphrase if
    /// it is encrypted.
    pub fn private_key(pem: &str, passphrase: Option<&str>) -> Result<Self, SftpConfigError> {
        russh::keys::decode_secret_key(pem, passphrase)
            .map(|k| Self::PrivateKey(Arc::new(k)))
            .map_err(|_| SftpConfigError::PrivateKey)
    }
}

impl std::fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "Password(..)",
            Self::PrivateKey(_) => "PrivateKey(..)",
        })
    }
}

/// A file name in the `upload` folder: no path, nothing a server could read as one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadName(String);

impl UploadName {
    pub fn parse(s: &str) -> Result<Self, SftpConfigError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(s.to_owned()))
            .ok_or(SftpConfigError::FileName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `upload/<name>`.
    pub fn remote_path(&self) -> String {
        format!("{UPLOAD_DIR}/{}", self.0)
    }

    /// `download/<name>`.
    pub fn download_path(&self) -> String {
        format!("{DOWNLOAD_DIR}/{}", self.0)
    }
}

/// Where and how to upload: one org's SFTP endpoint.
#[derive(Debug, Clone)]
pub struct SftpTarget {
    pub host: String,
    pub port: u16,
    pub username: Secret,
    pub auth: SftpAuth,
    pub host_key: HostKey,
    /// Deadline of each network step (connect, login, open, one chunk, close).
    pub step_timeout: Duration,
}

impl SftpTarget {
    pub fn new(
        host: impl Into<String>,
        port: u16,
        username: Secret,
        auth: SftpAuth,
        host_key: HostKey,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            username,
            auth,
            host_key,
            step_timeout: Duration::from_secs(60),
        }
    }

    /// Writes `upload/<name>` from `source`, replacing a file of that name; returns the bytes
    /// written.
    pub async fn upload<R: AsyncRead + Unpin>(
        &self,
        name: &UploadName,
        mut source: R,
    ) -> Result<u64, SftpError> {
        let session = self.connect().await?;
        let result = self.write_file(&session, name, &mut source).await;
        // The file is closed (complete) or the error is what counts; a failed goodbye is not.
        let _ = session
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        result
    }

    /// Reads `download/<name>` whole, refusing a file above `max_bytes` (it is held in
    /// memory).
    pub async fn download(&self, name: &UploadName, max_bytes: u64) -> Result<Vec<u8>, SftpError> {
        let session = self.connect().await?;
        let result = self.read_file(&session, name, max_bytes).await;
        let _ = session
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        result
    }

    async fn connect(&self) -> Result<Handle<HostKeyCheck>, SftpError> {
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(self.step_timeout),
            ..Default::default()
        });
        let check = HostKeyCheck {
            expected: self.host_key.clone(),
            presented: Arc::new(Mutex::new(None)),
        };
        let presented = check.presented.clone();
        let connected = self
            .step(
                "connect",
                client::connect(config, (self.host.as_str(), self.port), check),
            )
            .await?;
        let mut session = match connected {
            Ok(s) => s,
            Err(russh::Error::UnknownKey) => {
                let presented = presented
                    .lock()
                    .ok()
                    .and_then(|p| p.clone())
                    .unwrap_or_else(|| "an unknown key".to_owned());
                return Err(SftpError::HostKeyMismatch { presented });
            }
            Err(e) => return Err(transport("connect", &e)),
        };
        let user = self.username.expose_secret().to_owned();
        let auth = match &self.auth {
            SftpAuth::Password(p) => {
                let password = p.expose_secret().to_owned();
                self.step("login", session.authenticate_password(user, password))
                    .await?
            }
            SftpAuth::PrivateKey(key) => {
                // RSA keys sign with the best hash the server offers (SHA-1 only as a last resort).
                let hash = self
                    .step("login", session.best_supported_rsa_hash())
                    .await?
                    .map_err(|e| transport("login", &e))?
                    .flatten();
                let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
                self.step("login", session.authenticate_publickey(user, key))
                    .await?
            }
        };
        match auth.map_err(|e| transport("login", &e))? {
            AuthResult::Success => Ok(session),
            AuthResult::Failure { .. } => Err(SftpError::AuthRefused),
        }
    }

    /// The SFTP subsystem on a new channel of `session`.
    async fn sftp(&self, session: &Handle<HostKeyCheck>) -> Result<SftpSession, SftpError> {
        let channel = self
            .step("channel", session.channel_open_session())
            .await?
            .map_err(|e| transport("channel", &e))?;
        self.step("channel", channel.request_subsystem(true, "sftp"))
            .await?
            .map_err(|e| transport("subsystem", &e))?;
        self.step("sftp start", SftpSession::new(channel.into_stream()))
            .await?
            .map_err(|e| transport("sftp start", &e))
    }

    async fn read_file(
        &self,
        session: &Handle<HostKeyCheck>,
        name: &UploadName,
        max_bytes: u64,
    ) -> Result<Vec<u8>, SftpError> {
        let sftp = self.sftp(session).await?;
        let path = name.download_path();
        let file_err = |step: &'static str, e: &dyn std::fmt::Display| SftpError::File {
            step,
            file: path.clone(),
            message: e.to_string(),
        };
        let mut file = self
            .step("open", sftp.open(&path))
            .await?
            .map_err(|e| file_err("open", &e))?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = self
                .step("read", file.read(&mut buf))
                .await?
                .map_err(|e| file_err("read", &e))?;
            if n == 0 {
                break;
            }
            if out.len() as u64 + n as u64 > max_bytes {
                return Err(SftpError::TooLarge {
                    file: path,
                    max: max_bytes,
                });
            }
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        let _ = self.step("close", file.shutdown()).await;
        let _ = self.step("sftp end", sftp.close()).await;
        Ok(out)
    }

    async fn write_file<R: AsyncRead + Unpin>(
        &self,
        session: &Handle<HostKeyCheck>,
        name: &UploadName,
        source: &mut R,
    ) -> Result<u64, SftpError> {
        let sftp = self.sftp(session).await?;
        let path = name.remote_path();
        let file_err = |step: &'static str| {
            let file = path.clone();
            move |e: std::io::Error| SftpError::File {
                step,
                file,
                message: e.to_string(),
            }
        };
        let mut file = self
            .step(
                "open",
                sftp.open_with_flags(
                    &path,
                    OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                ),
            )
            .await?
            .map_err(|e| SftpError::File {
                step: "open",
                file: path.clone(),
                message: e.to_string(),
            })?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut written = 0u64;
        loop {
            let n = source
                .read(&mut buf)
                .await
                .map_err(|e| SftpError::Source(e.kind()))?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            self.step("write", file.write_all(chunk))
                .await?
                .map_err(file_err("write"))?;
            written += n as u64;
        }
        // Closing the handle is what completes the file on the server.
        self.step("close", file.shutdown())
            .await?
            .map_err(file_err("close"))?;
        let _ = self.step("sftp end", sftp.close()).await;
        Ok(written)
    }

    async fn step<T>(
        &self,
        step: &'static str,
        fut: impl Future<Output = T>,
    ) -> Result<T, SftpError> {
        tokio::time::timeout(self.step_timeout, fut)
            .await
            .map_err(|_| SftpError::Timeout {
                step,
                after: self.step_timeout,
            })
    }
}

fn transport(step: &'static str, e: &dyn std::fmt::Display) -> SftpError {
    SftpError::Transport {
        step,
        message: e.to_string(),
    }
}

/// The client side of the connection: accepts the configured host key only, and remembers the
/// fingerprint of the key it refused for the error.
struct HostKeyCheck {
    expected: HostKey,
    presented: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A host certificate is not trusted on its own: only the configured key is.
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            if let Ok(mut p) = self.presented.lock() {
                *p = Some("a host certificate".to_owned());
            }
            return Ok(false);
        };
        let ok = self.expected.matches(key);
        if !ok && let Ok(mut p) = self.presented.lock() {
            *p = Some(fingerprint(key));
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_plain_file_names() {
        assert_eq!(
            UploadName::parse("camp-881_v1.csv").unwrap().remote_path(),
            "upload/camp-881_v1.csv"
        );
        for bad in [
            "",
            "../x.csv",
            "a/b.csv",
            ".hidden",
            "a b.csv",
            "x\u{e9}.csv",
            &"a".repeat(129),
        ] {
            assert_eq!(
                UploadName::parse(bad),
                Err(SftpConfigError::FileName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn host_keys_parse_as_key_or_fingerprint() {
        let key = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
            &[7; 32],
        ));
        let public = key.public_key().clone();
        let line = public.to_openssh().unwrap();
        let fp = fingerprint(&public);
        assert!(HostKey::parse(&line).unwrap().matches(&public));
        assert!(HostKey::parse(&fp).unwrap().matches(&public));
        assert!(HostKey::parse(&format!("{fp}=")).unwrap().matches(&public));
        let other = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
            &[8; 32],
        ));
        assert!(!HostKey::parse(&fp).unwrap().matches(other.public_key()));
        assert!(!HostKey::parse(&line).unwrap().matches(other.public_key()));
        for bad in ["", "SHA256:", "SHA256:a b", "ssh-ed25519 notbase64"] {
            assert_eq!(
                HostKey::parse(bad),
                Err(SftpConfigError::HostKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn private_keys_decode_and_never_print() {
        let key = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
            &[9; 32],
        ));
        let pem = key
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .unwrap();
        let auth = SftpAuth::private_key(&pem, None).unwrap();
        assert_eq!(format!("{auth:?}"), "PrivateKey(..)");
        assert!(matches!(
            SftpAuth::private_key("not a key", None),
            Err(SftpConfigError::PrivateKey)
        ));
        assert_eq!(
            format!(
                "{:?}",
                SftpAuth::Password(Secret::from("hunter2".to_owned()))
            ),
            "Password(..)"
        );
    }
}
