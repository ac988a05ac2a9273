//! The org's SFTP endpoint: a real SSH server (russh) with the SFTP subsystem (russh-sftp) on
//! loopback, where a client uploads the files the import jobs read.
//!
//! It takes one user, with a password and/or an authorized public key, and presents a fixed
//! Ed25519 host key ([`SftpEndpoint::host_key`]). Only files directly in `upload/` can be
//! written (opened for writing, written at any offset, closed); a file becomes visible
//! ([`SftpEndpoint::file`]) when its handle is closed, replacing one of the same name. Only
//! files directly in `download/` can be read: the org's files the simulator leaves there (an
//! import job's error file, [`SftpEndpoint::download_file`]). Listing, renaming and deleting
//! are refused (OpUnsupported).
//!
//! Bounds: a file above `max_file_bytes`, or a close that would make the stored files exceed
//! `max_total_bytes`, fails the write or close (SFTP status Failure) and stores nothing; at most
//! [`MAX_CONNECTIONS`] connections are served at once and [`MAX_OPEN_FILES`] handles per
//! connection.

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use russh_sftp::protocol::{
    Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode,
};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Connections served at once; more wait for one to end.
pub const MAX_CONNECTIONS: usize = 16;
/// Open file handles per connection.
pub const MAX_OPEN_FILES: usize = 8;

/// Who may log in, and how much the endpoint stores.
#[derive(Debug, Clone)]
pub struct SftpSimConfig {
    pub username: String,
    /// `None`: password login refused.
    pub password: Option<String>,
    /// Public keys that may log in as `username`.
    pub authorized_keys: Vec<PublicKey>,
    /// The host key's seed (a fixed key, so tests can pin it).
    pub host_key_seed: [u8; 32],
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
}

impl SftpSimConfig {
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: Some(password.to_owned()),
            authorized_keys: Vec::new(),
            host_key_seed: [42; 32],
            max_file_bytes: 256 * 1024 * 1024,
            max_total_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// The files stored in `upload/` and `download/`, by name.
#[derive(Debug, Default)]
pub(crate) struct Store {
    files: BTreeMap<String, Vec<u8>>,
    downloads: BTreeMap<String, Arc<Vec<u8>>>,
}

impl Store {
    fn total(&self) -> u64 {
        self.files.values().map(|f| f.len() as u64).sum()
    }
}

/// The endpoint's folders as the simulated org sees them: import jobs read `upload/` and leave
/// their error files in `download/`.
#[derive(Debug, Clone)]
pub(crate) struct SftpFiles(Arc<Mutex<Store>>);

impl SftpFiles {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // Every change completes before unlock, so a poisoned lock still guards valid data.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytes of `upload/<name>`.
    pub(crate) fn upload(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().files.get(name).cloned()
    }

    /// Writes `download/<name>`.
    pub(crate) fn put_download(&self, name: &str, bytes: Vec<u8>) {
        self.lock()
            .downloads
            .insert(name.to_owned(), Arc::new(bytes));
    }
}

/// A running endpoint; dropping it stops accepting connections.
pub struct SftpEndpoint {
    addr: SocketAddr,
    host_key: PublicKey,
    store: Arc<Mutex<Store>>,
    logins: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for SftpEndpoint {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl std::fmt::Debug for SftpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpEndpoint")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SftpEndpoint {
    /// Binds `127.0.0.1` on a free port and serves until dropped.
    pub async fn start(config: SftpSimConfig) -> std::io::Result<Self> {
        let host = PrivateKey::from(Ed25519Keypair::from_seed(&config.host_key_seed));
        let host_key = host.public_key().clone();
        let mut methods = MethodSet::empty();
        if config.password.is_some() {
            methods.push(MethodKind::Password);
        }
        methods.push(MethodKind::PublicKey);
        let server = Arc::new(russh::server::Config {
            methods,
            keys: vec![host],
            auth_rejection_time: Duration::from_millis(10),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Mutex::new(Store::default()));
        let user = Arc::new(config);
        let logins = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            server,
            user,
            store.clone(),
            logins.clone(),
        ));
        Ok(Self {
            addr,
            host_key,
            store,
            logins,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host key the endpoint presents.
    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// Password and public-key login attempts received so far (accepted or not): a client
    /// that refuses the host key sends none.
    pub fn login_attempts(&self) -> usize {
        self.logins.load(Ordering::Relaxed)
    }

    /// The bytes of `upload/<name>`, once its upload was closed.
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.store.lock().ok()?.files.get(name).cloned()
    }

    /// The names of the files in `upload/`.
    pub fn file_names(&self) -> Vec<String> {
        self.store
            .lock()
            .map(|s| s.files.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The bytes of `download/<name>`.
    pub fn download_file(&self, name: &str) -> Option<Vec<u8>> {
        Some(
            self.store
                .lock()
                .ok()?
                .downloads
                .get(name)?
                .as_ref()
                .clone(),
        )
    }

    /// Writes `download/<name>` (what the org finds there, e.g. a file a test crafted).
    pub fn put_download(&self, name: &str, bytes: Vec<u8>) {
        self.files().put_download(name, bytes);
    }

    /// The names of the files in `download/`.
    pub fn download_names(&self) -> Vec<String> {
        self.store
            .lock()
            .map(|s| s.downloads.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The folders, shared with the simulator's import jobs.
    pub(crate) fn files(&self) -> SftpFiles {
        SftpFiles(self.store.clone())
    }
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<russh::server::Config>,
    user: Arc<SftpSimConfig>,
    store: Arc<Mutex<Store>>,
    logins: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let handler = SshHandler {
            user: user.clone(),
            store: store.clone(),
            logins: logins.clone(),
            channels: HashMap::new(),
        };
        let server = server.clone();
        tokio::spawn(async move {
            if let Ok(session) = russh::server::run_stream(server, socket, handler).await {
                let _ = session.await;
            }
            drop(slot);
        });
    }
}

/// One SSH connection.
struct SshHandler {
    user: Arc<SftpSimConfig>,
    store: Arc<Mutex<Store>>,
    logins: Arc<AtomicUsize>,
    /// Session channels opened and not yet turned into the SFTP subsystem (a client opens one).
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for SshHandler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        self.logins.fetch_add(1, Ordering::Relaxed);
        let ok = user == self.user.username && self.user.password.as_deref() == Some(password);
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.logins.fetch_add(1, Ordering::Relaxed);
        let ok = user == self.user.username
            && self
                .user
                .authorized_keys
                .iter()
                .any(|k| k.key_data() == key.public_key.key_data());
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_OPEN_FILES {
            return Ok(()); // dropping the handle refuses the channel
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.remove(&channel) {
            Some(ch) if name == "sftp" => {
                session.channel_success(channel)?;
                let sftp = SftpHandler {
                    limits: self.user.clone(),
                    store: self.store.clone(),
                    open: HashMap::new(),
                    reading: HashMap::new(),
                    next_handle: 0,
                };
                // Spawns the subsystem's loop on the channel's stream.
                russh_sftp::server::run(ch.into_stream(), sftp).await;
                Ok(())
            }
            _ => session.channel_failure(channel),
        }
    }
}

/// The SFTP subsystem of one channel: files being written, and files being read, by handle.
struct SftpHandler {
    limits: Arc<SftpSimConfig>,
    store: Arc<Mutex<Store>>,
    open: HashMap<String, (String, Vec<u8>)>,
    reading: HashMap<String, Arc<Vec<u8>>>,
    next_handle: u64,
}

/// `<dir>/<name>` (or `/<dir>/<name>`, `./<dir>/<name>`) → `<name>`; anything else `None`.
fn name_in<'a>(dir: &str, path: &'a str) -> Option<&'a str> {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    let name = path.strip_prefix(dir)?.strip_prefix('/')?;
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
    plain.then_some(name)
}

/// `upload/<name>` → `<name>`.
fn upload_name(path: &str) -> Option<&str> {
    name_in("upload", path)
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".to_owned(),
        language_tag: "en-US".to_owned(),
    }
}

impl russh_sftp::server::Handler for SftpHandler {
    type Error = StatusCode;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        if self.open.len() + self.reading.len() >= MAX_OPEN_FILES {
            return Err(StatusCode::Failure);
        }
        if pflags.contains(OpenFlags::READ) && !pflags.contains(OpenFlags::WRITE) {
            // Reading: files in download/ only, as they are when opened.
            let name = name_in("download", &filename).ok_or(StatusCode::PermissionDenied)?;
            let bytes = {
                let store = self.store.lock().map_err(|_| StatusCode::Failure)?;
                store
                    .downloads
                    .get(name)
                    .cloned()
                    .ok_or(StatusCode::NoSuchFile)?
            };
            self.next_handle += 1;
            let handle = self.next_handle.to_string();
            self.reading.insert(handle.clone(), bytes);
            return Ok(Handle { id, handle });
        }
        if !pflags.contains(OpenFlags::WRITE) || pflags.contains(OpenFlags::READ) {
            return Err(StatusCode::OpUnsupported);
        }
        let name = upload_name(&filename).ok_or(StatusCode::PermissionDenied)?;
        // Without TRUNCATE the upload continues the stored file (what a resumed transfer does).
        let start = if pflags.contains(OpenFlags::TRUNCATE) {
            Vec::new()
        } else {
            let store = self.store.lock().map_err(|_| StatusCode::Failure)?;
            match store.files.get(name) {
                Some(f) => f.clone(),
                None if pflags.contains(OpenFlags::CREATE) => Vec::new(),
                None => return Err(StatusCode::NoSuchFile),
            }
        };
        self.next_handle += 1;
        let handle = self.next_handle.to_string();
        self.open.insert(handle.clone(), (name.to_owned(), start));
        Ok(Handle { id, handle })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let (_, bytes) = self.open.get_mut(&handle).ok_or(StatusCode::Failure)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(StatusCode::Failure)?;
        if end > self.limits.max_file_bytes {
            return Err(StatusCode::Failure);
        }
        let (start, end) = (
            usize::try_from(offset).map_err(|_| StatusCode::Failure)?,
            usize::try_from(end).map_err(|_| StatusCode::Failure)?,
        );
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes
            .get_mut(start..end)
            .ok_or(StatusCode::Failure)?
            .copy_from_slice(&data);
        Ok(ok(id))
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let bytes = self.reading.get(&handle).ok_or(StatusCode::Failure)?;
        let start = usize::try_from(offset).map_err(|_| StatusCode::Failure)?;
        if start >= bytes.len() {
            return Err(StatusCode::Eof);
        }
        let end = start.saturating_add(len as usize).min(bytes.len());
        Ok(Data {
            id,
            data: bytes.get(start..end).unwrap_or_default().to_vec(),
        })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        if self.reading.remove(&handle).is_some() {
            return Ok(ok(id));
        }
        let (name, bytes) = self.open.remove(&handle).ok_or(StatusCode::Failure)?;
        let mut store = self.store.lock().map_err(|_| StatusCode::Failure)?;
        let replaced = store.files.get(&name).map_or(0, |f| f.len() as u64);
        if store.total() - replaced + bytes.len() as u64 > self.limits.max_total_bytes {
            return Err(StatusCode::Failure);
        }
        store.files.insert(name, bytes);
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        // The home folder is `/`; `upload` is in it.
        let path = match path.trim_start_matches("./").trim_start_matches('/') {
            "" | "." => "/".to_owned(),
            p => format!("/{p}"),
        };
        Ok(Name {
            id,
            files: vec![File::dummy(path)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_in_upload_are_writable() {
        assert_eq!(upload_name("upload/a.csv"), Some("a.csv"));
        assert_eq!(upload_name("/upload/a.csv"), Some("a.csv"));
        assert_eq!(upload_name("./upload/a.csv"), Some("a.csv"));
        for bad in [
            "a.csv",
            "upload/",
            "upload/..",
            "upload/x/a.csv",
            "download/a.csv",
            "uploads/a.csv",
            "/etc/passwd",
        ] {
            assert_eq!(upload_name(bad), None, "{bad}");
        }
        assert_eq!(name_in("download", "/download/e.csv"), Some("e.csv"));
        assert_eq!(name_in("download", "upload/e.csv"), None);
    }
}
