//! The one extension point per ESP: an [`EspDriver`] builds an account's client from its
//! configuration entry and, in builds with simulators, starts the ESP's simulator. The registry
//! (`espbridge_app::registry`) lists one driver per ESP; everything that needs "each ESP"
//! iterates it instead of matching on [`EspKind`].

use crate::AdapterError;
use async_trait::async_trait;
use espbridge_core::ports::Esp;
use espbridge_core::ports::limits::AccountLimits;
use espbridge_core::service::{LateSend, SendPolicy};
use espbridge_core::{AccountId, Clock, EspKind};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error from an adapter or a secret store, kept as the source of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where named credentials are read (Secrets Manager in AWS).
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secret's value, which must be a JSON object.
    async fn get_json(&self, id: &str) -> Result<Value, SecretError>;
}

/// Why a secret could not be read. Never carries the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {id:?} not found")]
    NotFound { id: String },
    #[error("secret {id:?} is not a JSON object")]
    NotJson { id: String },
    #[error("secret {id:?} could not be read ({code})")]
    Unavailable {
        id: String,
        /// The secret store's error code (e.g. `AccessDeniedException`).
        code: String,
        #[source]
        source: BoxError,
    },
}

/// One account entry of the configuration (`[[accounts]]` locally, `ESPBRIDGE_ACCOUNTS` in
/// Lambda): `esp` and `account`, `credentials` inline or `credentials_secret`, and the ESP's own
/// fields, which its driver reads.
#[derive(Debug, Clone)]
pub struct AccountEntry {
    pub esp: EspKind,
    pub account: AccountId,
    fields: Map<String, Value>,
}

impl AccountEntry {
    /// Reads `esp` and `account` from a JSON object; the rest is left for the driver.
    pub fn from_value(v: Value) -> Result<Self, String> {
        let Value::Object(fields) = v else {
            return Err("an account entry must be an object".into());
        };
        let esp = match fields.get("esp") {
            Some(Value::String(s)) => EspKind::parse(s).map_err(|e| format!("esp: {e}"))?,
            Some(_) => return Err("esp: must be a string".into()),
            None => return Err("esp: missing".into()),
        };
        let account = match fields.get("account") {
            Some(Value::String(s)) => AccountId::parse(s).map_err(|e| format!("account: {e}"))?,
            Some(_) => return Err("account: must be a string".into()),
            None => return Err("account: missing".into()),
        };
        Ok(Self {
            esp,
            account,
            fields,
        })
    }

    /// The account's send policy, from the fields every ESP's entry may carry:
    /// `send_grace_mins` (0 to 1440; default 15) and `late_send` (`"fail"`, the default, or
    /// `"at_once"`). The error names the field.
    pub fn send_policy(&self) -> Result<SendPolicy, String> {
        let mut policy = SendPolicy::default();
        match self.fields.get("send_grace_mins") {
            None => {}
            Some(v) => match v.as_u64() {
                Some(m) if m <= 1440 => policy.grace = std::time::Duration::from_secs(m * 60),
                _ => return Err("send_grace_mins: a whole number of minutes, 0 to 1440".into()),
            },
        }
        match self.fields.get("late_send").map(|v| v.as_str()) {
            None | Some(Some("fail")) => {}
            Some(Some("at_once")) => policy.late = LateSend::AtOnce,
            Some(_) => return Err("late_send: \"fail\" or \"at_once\"".into()),
        }
        Ok(policy)
    }

    /// Names the entry's account `account` (a second simulated account of one ESP, say).
    pub fn rename(&mut self, account: AccountId) {
        self.fields
            .insert("account".into(), Value::String(account.as_str().to_owned()));
        self.account = account;
    }

    /// An entry for `esp`'s `account` with the ESP's own `fields` (a JSON object; anything
    /// else gives an entry with no fields, which the driver then refuses by name).
    pub fn new(esp: EspKind, account: AccountId, fields: Value) -> Self {
        let mut fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        fields.insert("esp".into(), Value::String(esp.as_str().to_owned()));
        fields.insert("account".into(), Value::String(account.as_str().to_owned()));
        Self {
            esp,
            account,
            fields,
        }
    }

    /// The entry as JSON (the form a simulator hands back).
    pub fn to_value(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    /// Sets one field (tests and the local stack adjust simulator accounts this way).
    pub fn set(&mut self, key: &str, value: Value) {
        self.fields.insert(key.to_owned(), value);
    }

    /// The ESP's configuration type read from the entry's fields (credentials excluded).
    pub fn config<C: DeserializeOwned>(&self) -> Result<C, AccountError> {
        let mut fields = self.fields.clone();
        fields.remove("credentials");
        fields.remove("credentials_secret");
        fields.remove("esp");
        serde_json::from_value(Value::Object(fields)).map_err(|e| self.error(e.to_string()))
    }

    /// The credentials: inline (`credentials`), else the secret named by `credentials_secret`.
    /// No error names a credential's value.
    pub async fn credentials<K: DeserializeOwned>(
        &self,
        secrets: Option<&dyn SecretSource>,
    ) -> Result<K, AccountError> {
        if let Some(inline) = self.fields.get("credentials") {
            return serde_json::from_value(inline.clone()).map_err(|_| {
                self.error("credentials: not the expected fields for this ESP".to_owned())
            });
        }
        let id = match self.fields.get("credentials_secret") {
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(self.error("credentials_secret: must be a string".into())),
            None => {
                return Err(self.error("neither credentials nor credentials_secret is set".into()));
            }
        };
        let Some(secrets) = secrets else {
            return Err(self.error(format!(
                "credentials_secret {id:?} is set but no secret store is available here"
            )));
        };
        let value = secrets
            .get_json(&id)
            .await
            .map_err(|source| AccountError::Secret {
                esp: self.esp,
                account: self.account.clone(),
                source,
            })?;
        serde_json::from_value(value).map_err(|_| {
            self.error(format!(
                "secret {id:?} does not hold the expected JSON fields"
            ))
        })
    }

    /// Reads the ESP's configuration and the credentials, and builds the client with `build`:
    /// the whole of a driver's `connect`.
    pub async fn build<C, K, E, B>(
        &self,
        secrets: Option<&dyn SecretSource>,
        build: B,
    ) -> Result<Arc<dyn Esp>, AccountError>
    where
        C: DeserializeOwned + Send,
        K: DeserializeOwned + Send,
        E: Esp + 'static,
        B: FnOnce(C, K) -> Result<E, AdapterError>,
    {
        let config: C = self.config()?;
        let credentials: K = self.credentials(secrets).await?;
        let esp = build(config, credentials).map_err(|e| self.build_error(e))?;
        Ok(Arc::new(esp))
    }

    /// An error about this entry.
    pub fn error(&self, problem: String) -> AccountError {
        AccountError::Invalid {
            esp: self.esp,
            account: self.account.clone(),
            problem,
        }
    }

    /// An error from building the ESP's client, kept as the source.
    pub fn build_error(
        &self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> AccountError {
        AccountError::Build {
            esp: self.esp,
            account: self.account.clone(),
            source: Box::new(source),
        }
    }
}

/// Why an account could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{esp} account {account}: {problem}")]
    Invalid {
        esp: EspKind,
        account: AccountId,
        problem: String,
    },
    #[error("{esp} account {account}: {source}")]
    Secret {
        esp: EspKind,
        account: AccountId,
        #[source]
        source: SecretError,
    },
    #[error("{esp} account {account}: {source}")]
    Build {
        esp: EspKind,
        account: AccountId,
        #[source]
        source: BoxError,
    },
    #[error("{esp}: this build has no simulator (feature \"simulator\")")]
    NoSimulator { esp: EspKind },
    #[error("{esp}: the simulator did not start")]
    Simulator {
        esp: EspKind,
        #[source]
        source: std::io::Error,
    },
}

impl AccountError {
    /// Whether trying again may help (a secret store that did not answer).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            AccountError::Secret {
                source: SecretError::Unavailable { .. },
                ..
            }
        )
    }
}

/// What a simulated account is set up with.
#[derive(Clone)]
pub struct SimSetup {
    pub clock: Arc<dyn Clock>,
    /// The account's zone.
    pub timezone: String,
    /// The template-name prefix the account's rules use (the integration guides' `optimove_`).
    pub template_prefix: String,
    /// Simulated processing time of every request.
    pub latency: Duration,
    /// Share of customer ids (e-mails on Bronto) the account does not know, chosen by a stable
    /// hash.
    pub unknown_share: f64,
}

impl SimSetup {
    /// No latency; 1% unknown customers.
    pub fn new(clock: Arc<dyn Clock>, timezone: &str, template_prefix: &str) -> Self {
        Self {
            clock,
            timezone: timezone.to_owned(),
            template_prefix: template_prefix.to_owned(),
            latency: Duration::ZERO,
            unknown_share: 0.01,
        }
    }
}

/// One send as a simulated ESP made it: its audience frozen at its send time, as the ESP
/// evaluates lists, segments and queries then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSend {
    /// The ESP object's name (`espbridge_<campaign>[_<variant>]`).
    pub name: String,
    pub send_at: jiff::Timestamp,
    /// The keys the send went to (customer ids; e-mail addresses on Bronto), sorted.
    pub recipients: Vec<String>,
}

/// What tests and benchmarks read from a simulator, whatever its ESP.
pub trait SimView: Send + Sync {
    /// The sends whose time has come on the simulator's clock, each with its audience.
    fn sends(&self) -> Vec<SimSend>;
    /// Requests refused for an account limit (rate, concurrency, sessions, pending uploads).
    fn limit_refusals(&self) -> u64;
    /// The most requests the simulator had in flight at once.
    fn peak_in_flight(&self) -> usize;
    /// Simulated processing time of every request from now on.
    fn set_latency(&self, latency: Duration);
}

/// A running simulator and the account entry that points at it (credentials inline).
pub struct SimulatedAccount {
    pub entry: AccountEntry,
    pub base_url: String,
    /// The ESP's own simulator type (`espbridge_<esp>::sim::…Sim`), for tests that look inside;
    /// it stops when the last reference is dropped.
    pub simulator: Arc<dyn Any + Send + Sync>,
    /// The same simulator, read the same way for every ESP.
    pub view: Arc<dyn SimView>,
}

impl SimulatedAccount {
    /// A simulator of `esp` at `base_url` and the `default` account's `fields` (base URL,
    /// inline credentials, the ESP's settings).
    pub fn new<T: SimView + Any>(
        esp: EspKind,
        base_url: String,
        simulator: T,
        fields: Value,
    ) -> Self {
        let simulator = Arc::new(simulator);
        Self {
            entry: AccountEntry::new(esp, AccountId::default_name(), fields),
            base_url,
            simulator: Arc::clone(&simulator) as Arc<dyn Any + Send + Sync>,
            view: simulator,
        }
    }

    /// The simulator as its own type, when it is one.
    pub fn simulator<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.simulator).downcast::<T>().ok()
    }
}

/// One campaign the demo runs on an ESP.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoCampaign {
    /// Part of the campaign id (`demo-<esp>-<label>-…`) when an ESP runs several.
    pub label: Option<&'static str>,
    /// The manifest's `esp_options`, e.g. an audience mode.
    pub esp_options: Option<Value>,
}

/// What an account's client is built with besides its own configuration.
#[derive(Clone)]
pub struct BuildContext {
    pub clock: Arc<dyn Clock>,
    /// The deployment-wide account limits (DynamoDB in AWS, memory locally).
    pub limits: Arc<dyn AccountLimits>,
}

impl BuildContext {
    /// Limits held in this process's memory: the local mode (one process) and tests.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            limits: Arc::new(crate::MemoryLimits::new()),
        }
    }
}

/// One ESP, as the registry lists it. Adapter crates do not implement this directly: they
/// implement [`Adapter`] on their `Esp` type, and [`Driver`] does the rest.
#[async_trait]
pub trait EspDriver: Send + Sync + 'static {
    fn kind(&self) -> EspKind;

    /// Builds one account's client from its entry, reading named credentials from `secrets`.
    /// Checks the configuration; makes no call to the ESP.
    async fn connect(
        &self,
        entry: &AccountEntry,
        secrets: Option<&dyn SecretSource>,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn Esp>, AccountError>;

    /// Starts the ESP's simulator on loopback with an account set up for `setup`.
    async fn simulate(&self, setup: &SimSetup) -> Result<SimulatedAccount, AccountError> {
        let _ = setup;
        Err(AccountError::NoSimulator { esp: self.kind() })
    }

    /// The campaigns `espbridge demo` runs on this ESP: one by default.
    fn demo_campaigns(&self) -> Vec<DemoCampaign> {
        vec![DemoCampaign::default()]
    }
}

/// What an ESP adapter crate provides to be in the registry: its kind, configuration and
/// credential types, how its client is built, and (feature `simulator`) how its simulator
/// starts.
pub trait Adapter: Esp + Sized + 'static {
    const KIND: EspKind;
    type Config: DeserializeOwned + Send;
    type Credentials: DeserializeOwned + Send;

    /// Checks the configuration and builds the client; makes no call to the ESP.
    fn build(
        config: Self::Config,
        credentials: Self::Credentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError>;

    /// Starts the ESP's simulator on loopback with an account set up for `setup`.
    fn simulate(
        setup: &SimSetup,
    ) -> impl Future<Output = Result<SimulatedAccount, AccountError>> + Send {
        let _ = setup;
        std::future::ready(Err(AccountError::NoSimulator { esp: Self::KIND }))
    }

    /// The campaigns `espbridge demo` runs on this ESP: one by default.
    fn demo_campaigns() -> Vec<DemoCampaign> {
        vec![DemoCampaign::default()]
    }
}

/// The registry entry of an [`Adapter`] (`pub static DRIVER: Driver<MyEsp> = Driver::new();`).
pub struct Driver<A>(PhantomData<fn() -> A>);

impl<A> Driver<A> {
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<A> Default for Driver<A> {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl<A: Adapter> EspDriver for Driver<A> {
    fn kind(&self) -> EspKind {
        A::KIND
    }

    async fn connect(
        &self,
        entry: &AccountEntry,
        secrets: Option<&dyn SecretSource>,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn Esp>, AccountError> {
        entry
            .build(secrets, |config, credentials| {
                A::build(config, credentials, ctx)
            })
            .await
    }

    async fn simulate(&self, setup: &SimSetup) -> Result<SimulatedAccount, AccountError> {
        A::simulate(setup).await
    }

    fn demo_campaigns(&self) -> Vec<DemoCampaign> {
        A::demo_campaigns()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Store;
    #[async_trait]
    impl SecretSource for Store {
        async fn get_json(&self, id: &str) -> Result<Value, SecretError> {
            match id {
                "ok" => Ok(json!({"user": "u", "secret": "s3cr3t"})),
                "odd" => Ok(json!({"token": "s3cr3t"})),
                _ => Err(SecretError::NotFound { id: id.into() }),
            }
        }
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Creds {
        user: String,
        secret: String,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Config {
        account: AccountId,
        #[serde(default)]
        prefix: String,
    }

    fn entry(v: Value) -> AccountEntry {
        AccountEntry::from_value(v).unwrap()
    }

    #[test]
    fn a_send_policy_is_read_from_any_entry_and_checked() {
        let entry = |v: Value| AccountEntry::from_value(v).unwrap();
        let p = entry(serde_json::json!({"esp": "emarsys", "account": "eu"}))
            .send_policy()
            .unwrap();
        assert_eq!(p, SendPolicy::default());
        let p = entry(serde_json::json!({"esp": "bronto", "account": "b",
            "send_grace_mins": 60, "late_send": "at_once"}))
        .send_policy()
        .unwrap();
        assert_eq!(p.grace, std::time::Duration::from_secs(3600));
        assert_eq!(p.late, LateSend::AtOnce);
        for bad in [
            serde_json::json!({"esp": "emarsys", "account": "x", "send_grace_mins": -1}),
            serde_json::json!({"esp": "emarsys", "account": "x", "send_grace_mins": 5000}),
            serde_json::json!({"esp": "emarsys", "account": "x", "late_send": "later"}),
        ] {
            assert!(entry(bad).send_policy().is_err());
        }
    }

    #[test]
    fn entries_name_their_esp_and_account() {
        let e = entry(json!({"esp": "emarsys", "account": "eu", "prefix": "eu_"}));
        assert_eq!((e.esp, e.account.as_str()), (EspKind::Emarsys, "eu"));
        let c: Config = e.config().unwrap();
        assert_eq!((c.account.as_str(), c.prefix.as_str()), ("eu", "eu_"));
        for (v, why) in [
            (json!({"account": "eu"}), "esp: missing"),
            (json!({"esp": "mailchimp", "account": "eu"}), "esp:"),
            (json!({"esp": "emarsys"}), "account: missing"),
            (json!({"esp": "emarsys", "account": "a b"}), "account:"),
            (json!([1]), "object"),
        ] {
            let e = AccountEntry::from_value(v.clone()).unwrap_err();
            assert!(e.contains(why), "{v}: {e}");
        }
    }

    #[tokio::test]
    async fn credentials_inline_or_from_the_secret_and_never_in_errors() {
        let inline = entry(
            json!({"esp": "emarsys", "account": "eu", "credentials": {"user": "u", "secret": "s3cr3t"}}),
        );
        assert!(inline.credentials::<Creds>(None).await.is_ok());
        let named = entry(json!({"esp": "emarsys", "account": "eu", "credentials_secret": "ok"}));
        assert!(named.credentials::<Creds>(Some(&Store)).await.is_ok());
        let odd = entry(json!({"esp": "emarsys", "account": "eu", "credentials_secret": "odd"}));
        let e = odd.credentials::<Creds>(Some(&Store)).await.unwrap_err();
        assert!(e.to_string().contains("\"odd\" does not hold"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let bad_inline = entry(
            json!({"esp": "emarsys", "account": "eu", "credentials": {"user": "u", "pw": "s3cr3t"}}),
        );
        let e = bad_inline.credentials::<Creds>(None).await.unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let missing =
            entry(json!({"esp": "emarsys", "account": "eu", "credentials_secret": "gone"}));
        let e = missing
            .credentials::<Creds>(Some(&Store))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("\"gone\" not found"), "{e}");
        assert!(!e.is_retryable());
        let e = named.credentials::<Creds>(None).await.unwrap_err();
        assert!(e.to_string().contains("no secret store"), "{e}");
        let none = entry(json!({"esp": "emarsys", "account": "eu"}));
        let e = none.credentials::<Creds>(None).await.unwrap_err();
        assert!(e.to_string().contains("neither credentials"), "{e}");
    }
}
