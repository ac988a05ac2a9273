//! The configured ESP accounts, and how a manifest or a campaign finds its own.

use super::common::ServiceError;
use crate::campaign::Campaign;
use crate::ids::{AccountId, EspKind};
use crate::ports::Esp;
use std::sync::Arc;

/// The configured ESP accounts.
#[derive(Clone, Default)]
pub struct EspRegistry {
    accounts: Vec<Arc<dyn Esp>>,
    policies: Vec<((EspKind, AccountId), SendPolicy)>,
}

/// What an account does with send times, set per account in the configuration
/// (`send_grace_mins`, `late_send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPolicy {
    /// How far in the past a send time may lie when the drop arrives, or when the send is
    /// booked after the upload.
    pub grace: std::time::Duration,
    pub late: LateSend,
}

/// What happens to a send whose time passed (beyond the grace) while its audience uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateSend {
    /// Nothing is booked; the campaign fails with that reason (the default: a morning
    /// campaign sent in the afternoon is usually worse than none).
    Fail,
    /// The send is booked for now.
    AtOnce,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            grace: super::upload::DEFAULT_SEND_GRACE,
            late: LateSend::Fail,
        }
    }
}

/// Why no account was chosen for a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountChoiceError {
    #[error("no {esp} account named \"{account}\" is configured")]
    Unknown { esp: EspKind, account: AccountId },
    #[error("no {esp} account is configured")]
    None { esp: EspKind },
    #[error(
        "{count} {esp} accounts are configured: name one in \"account\" (or give a \"template_name\" whose prefix chooses it)"
    )]
    Ambiguous { esp: EspKind, count: usize },
}

impl EspRegistry {
    pub fn new(accounts: Vec<Arc<dyn Esp>>) -> Self {
        Self {
            accounts,
            policies: Vec::new(),
        }
    }
    /// `account`'s send policy, when it is not the default.
    pub fn with_policy(mut self, esp: EspKind, account: AccountId, policy: SendPolicy) -> Self {
        self.policies.retain(|(k, _)| *k != (esp, account.clone()));
        self.policies.push(((esp, account), policy));
        self
    }
    /// The account's send policy (the default unless the configuration sets one).
    pub fn policy(&self, esp: EspKind, account: &AccountId) -> SendPolicy {
        self.policies
            .iter()
            .find(|((e, a), _)| *e == esp && a == account)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }
    pub fn all(&self) -> &[Arc<dyn Esp>] {
        &self.accounts
    }
    pub fn of(&self, esp: EspKind) -> impl Iterator<Item = &Arc<dyn Esp>> {
        self.accounts.iter().filter(move |a| a.kind() == esp)
    }
    pub fn get(&self, esp: EspKind, account: &AccountId) -> Option<Arc<dyn Esp>> {
        self.of(esp).find(|a| a.account() == account).cloned()
    }

    /// The account a manifest means: the named one; else the one whose template-name rule claims
    /// `template_name`; else the ESP's only account.
    pub fn choose(
        &self,
        esp: EspKind,
        account: Option<&AccountId>,
        template_name: Option<&str>,
    ) -> Result<Arc<dyn Esp>, AccountChoiceError> {
        if let Some(a) = account {
            return self.get(esp, a).ok_or_else(|| AccountChoiceError::Unknown {
                esp,
                account: a.clone(),
            });
        }
        if let Some(name) = template_name {
            let claimed: Vec<_> = self
                .of(esp)
                .filter(|a| a.claims_template_name(name))
                .collect();
            if let [one] = claimed.as_slice() {
                return Ok(Arc::clone(one));
            }
        }
        let all: Vec<_> = self.of(esp).collect();
        match all.as_slice() {
            [one] => Ok(Arc::clone(one)),
            [] => Err(AccountChoiceError::None { esp }),
            _ => Err(AccountChoiceError::Ambiguous {
                esp,
                count: all.len(),
            }),
        }
    }

    /// The ESP account of a campaign.
    pub fn for_campaign(&self, c: &Campaign) -> Result<Arc<dyn Esp>, ServiceError> {
        match (c.esp, &c.account) {
            (Some(esp), Some(account)) => {
                self.get(esp, account)
                    .ok_or_else(|| ServiceError::AccountMissing {
                        esp,
                        account: account.clone(),
                    })
            }
            _ => Err(ServiceError::NoAccount(c.id.clone())),
        }
    }
}
