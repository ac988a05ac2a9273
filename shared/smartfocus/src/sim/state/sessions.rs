//! Sessions: `connect/open` and `close`, token lifetime and per-session call quotas.

use super::*;

pub(super) struct Session {
    pub(super) service: Service,
    pub(super) opened_at: Timestamp,
    pub(super) calls: u32,
    pub(super) ended: bool,
}

impl State {
    pub fn open(
        &mut self,
        service: Service,
        login: Option<&str>,
        password: Option<&str>,
        key: Option<&str>,
        now: Timestamp,
    ) -> Answer {
        let login = login.filter(|l| !l.is_empty()).ok_or_else(|| {
            Failure::new(
                "You must fill in the login parameter to authentifiate on this API.",
                "login",
                "CONNECTION_FAILED",
            )
        })?;
        if login != self.config.login || password != Some(self.config.password.as_str()) {
            return Err(Failure::new(
                "No manager retrieved for those login, password.",
                "login, password",
                "CONNECTION_FAILED",
            ));
        }
        if key != Some(self.config.key.as_str()) {
            return Err(Failure::new(
                "The managerKey is no longer valid. Your API access is closed!",
                "key",
                "CONNECTION_FAILED",
            ));
        }
        self.sessions_opened += 1;
        let counter = self.sessions_opened as u64;
        let token = format!(
            "{:016x}{:016x}",
            xxh3_64_with_seed(&counter.to_le_bytes(), 0x5f),
            xxh3_64_with_seed(&now.as_nanosecond().to_le_bytes(), counter)
        );
        self.sessions.insert(
            token.clone(),
            Session {
                service,
                opened_at: now,
                calls: 0,
                ended: false,
            },
        );
        Ok(xml::result("xs:string", &token))
    }

    pub fn close(&mut self, service: Service, token: Option<&str>, now: Timestamp) -> Answer {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::params("You must fill in the token parameter", "token"))?;
        let lifetime = self.config.token_lifetime;
        match self.sessions.get_mut(token) {
            Some(s) if s.service == service && !s.ended && now < plus(s.opened_at, lifetime) => {
                s.ended = true;
                Ok(xml::result("xs:string", "connection closed"))
            }
            _ => Err(Failure::new(
                "No available connection for the specified token.",
                "token",
                "CLOSE_CONNECTION_FAILED",
            )),
        }
    }

    /// Checks a token for one call, counting it against the session's quota.
    pub fn session(
        &mut self,
        service: Service,
        token: &str,
        now: Timestamp,
    ) -> Result<(), Failure> {
        let lifetime = self.config.token_lifetime;
        let quota = self.config.calls_per_session;
        let session = self
            .sessions
            .get_mut(token)
            .filter(|s| s.service == service && !s.ended)
            .ok_or_else(Failure::session_expired)?;
        if now >= plus(session.opened_at, lifetime) {
            session.ended = true;
            return Err(Failure::session_expired());
        }
        session.calls += 1;
        if quota.is_some_and(|q| session.calls > q) {
            session.ended = true;
            return Err(quota_reached());
        }
        Ok(())
    }

    pub fn expire_tokens(&mut self) {
        for session in self.sessions.values_mut() {
            session.ended = true;
        }
    }

    pub fn sessions_opened(&self) -> usize {
        self.sessions_opened
    }

    // ----- messages -----
}
