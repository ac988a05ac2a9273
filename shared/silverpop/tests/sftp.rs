//! The SFTP transport of the bulk import against the simulator's real SSH/SFTP server on
//! loopback: the bytes arrive exactly, a wrong host key or wrong credentials are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_esp_kit::Secret;
use espbridge_silverpop::sftp::{
    CHUNK_BYTES, HostKey, SftpAuth, SftpError, SftpTarget, UploadName,
};
use espbridge_silverpop::sim::{SftpEndpoint, SftpSimConfig};
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;

fn target(sim: &SftpEndpoint, user: &str, auth: SftpAuth, host_key: HostKey) -> SftpTarget {
    SftpTarget::new(
        "127.0.0.1",
        sim.addr().port(),
        Secret::from(user.to_owned()),
        auth,
        host_key,
    )
}

fn password(p: &str) -> SftpAuth {
    SftpAuth::Password(Secret::from(p.to_owned()))
}

fn pinned(sim: &SftpEndpoint) -> HostKey {
    HostKey::parse(&sim.host_key().to_openssh().unwrap()).unwrap()
}

/// A CSV of `rows` rows, several chunks long, with bytes that differ by position.
fn csv(rows: usize) -> Vec<u8> {
    let mut s = String::from("CustomerID,FirstName\n");
    for i in 0..rows {
        s.push_str(&format!("c{i:07},n\u{e9}{}\n", i * 7919 % 1000));
    }
    s.into_bytes()
}

#[tokio::test]
async fn a_password_upload_stores_exactly_the_bytes_in_upload() {
    let sim = SftpEndpoint::start(SftpSimConfig::new("api@org.example", "s3cret"))
        .await
        .unwrap();
    let body = csv(40_000);
    assert!(body.len() > 10 * CHUNK_BYTES, "the file spans many chunks");
    let name = UploadName::parse("camp881.csv").unwrap();
    let t = target(&sim, "api@org.example", password("s3cret"), pinned(&sim));

    let written = t.upload(&name, &body[..]).await.unwrap();

    assert_eq!(written, body.len() as u64);
    assert_eq!(sim.file("camp881.csv").unwrap(), body);
    // A repeated upload (a retried step) replaces the file: still the same bytes, once.
    let shorter = csv(3);
    t.upload(&name, &shorter[..]).await.unwrap();
    assert_eq!(sim.file("camp881.csv").unwrap(), shorter);
    assert_eq!(sim.file_names(), ["camp881.csv"]);
}

#[tokio::test]
async fn a_private_key_logs_in_and_a_fingerprint_pins_the_host() {
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[3; 32]));
    let mut config = SftpSimConfig::new("api@org.example", "unused");
    config.password = None;
    config.authorized_keys = vec![key.public_key().clone()];
    let sim = SftpEndpoint::start(config).await.unwrap();
    let fp = sim
        .host_key()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string();
    let pem = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .unwrap();
    let t = target(
        &sim,
        "api@org.example",
        SftpAuth::private_key(&pem, None).unwrap(),
        HostKey::parse(&fp).unwrap(),
    );

    t.upload(
        &UploadName::parse("map.xml").unwrap(),
        &b"<LIST_IMPORT/>"[..],
    )
    .await
    .unwrap();

    assert_eq!(sim.file("map.xml").unwrap(), b"<LIST_IMPORT/>");
    // Another key is not authorized.
    let other = PrivateKey::from(Ed25519Keypair::from_seed(&[4; 32]));
    let pem = other
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .unwrap();
    let t = target(
        &sim,
        "api@org.example",
        SftpAuth::private_key(&pem, None).unwrap(),
        HostKey::parse(&fp).unwrap(),
    );
    let err = t
        .upload(&UploadName::parse("x.csv").unwrap(), &b"x"[..])
        .await
        .unwrap_err();
    assert!(matches!(err, SftpError::AuthRefused), "{err}");
}

#[tokio::test]
async fn a_wrong_host_key_is_refused_before_logging_in() {
    let sim = SftpEndpoint::start(SftpSimConfig::new("api@org.example", "s3cret"))
        .await
        .unwrap();
    let impostor = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    let expected = HostKey::parse(&impostor.public_key().to_openssh().unwrap()).unwrap();
    let t = target(&sim, "api@org.example", password("s3cret"), expected);

    let err = t
        .upload(
            &UploadName::parse("camp881.csv").unwrap(),
            &b"CustomerID\nc1\n"[..],
        )
        .await
        .unwrap_err();

    let SftpError::HostKeyMismatch { presented } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        *presented,
        sim.host_key()
            .fingerprint(russh::keys::HashAlg::Sha256)
            .to_string()
    );
    assert!(!err.is_retryable());
    assert!(sim.file_names().is_empty());
}

#[tokio::test]
async fn a_wrong_password_or_user_is_refused_and_nothing_is_stored() {
    let sim = SftpEndpoint::start(SftpSimConfig::new("api@org.example", "s3cret"))
        .await
        .unwrap();
    for (user, pass) in [
        ("api@org.example", "wrong"),
        ("other@org.example", "s3cret"),
    ] {
        let t = target(&sim, user, password(pass), pinned(&sim));
        let err = t
            .upload(
                &UploadName::parse("camp881.csv").unwrap(),
                &b"CustomerID\nc1\n"[..],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SftpError::AuthRefused), "{err}");
        assert!(!err.is_retryable());
        // The error names neither the credentials nor the file's contents.
        let text = err.to_string();
        assert!(!text.contains(pass) && !text.contains("c1"), "{text}");
    }
    assert!(sim.file_names().is_empty());
}

#[tokio::test]
async fn a_file_above_the_endpoints_bound_is_refused_and_not_stored() {
    let mut config = SftpSimConfig::new("api@org.example", "s3cret");
    config.max_file_bytes = 100_000;
    let sim = SftpEndpoint::start(config).await.unwrap();
    let t = target(&sim, "api@org.example", password("s3cret"), pinned(&sim));
    let body = csv(20_000);

    let err = t
        .upload(&UploadName::parse("big.csv").unwrap(), &body[..])
        .await
        .unwrap_err();

    // Writes are pipelined: the refusal surfaces on a later write or when the file is closed.
    assert!(
        matches!(
            err,
            SftpError::File {
                step: "write" | "close",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("c00000"), "{err}");
    assert!(sim.file_names().is_empty());
}

#[tokio::test]
async fn files_in_download_are_read_whole_and_nothing_else_is_readable() {
    let sim = SftpEndpoint::start(SftpSimConfig::new("api@org.example", "s3cret"))
        .await
        .unwrap();
    let t = target(&sim, "api@org.example", password("s3cret"), pinned(&sim));
    let body = csv(30_000);
    sim.put_download("import_1_errors.csv", body.clone());
    let name = UploadName::parse("import_1_errors.csv").unwrap();

    assert_eq!(t.download(&name, 64 << 20).await.unwrap(), body);
    // Bounded: a file above the caller's cap is refused.
    let err = t.download(&name, 1_000).await.unwrap_err();
    assert!(
        matches!(err, SftpError::TooLarge { max: 1_000, .. }),
        "{err}"
    );
    // A missing file, or one in upload/, cannot be read.
    let missing = UploadName::parse("nope.csv").unwrap();
    let err = t.download(&missing, 1_000).await.unwrap_err();
    assert!(matches!(err, SftpError::File { step: "open", .. }), "{err}");
    t.upload(&UploadName::parse("up.csv").unwrap(), &b"x"[..])
        .await
        .unwrap();
    assert!(
        t.download(&UploadName::parse("up.csv").unwrap(), 10)
            .await
            .is_err()
    );
    assert_eq!(sim.download_names(), ["import_1_errors.csv"]);
}
