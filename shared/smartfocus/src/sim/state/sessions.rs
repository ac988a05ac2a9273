//! Sessions: `connect/open` and `close`, token lifetime, per-session call quotas and the
//! manager's cap on open sessions.

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
        let live = self.live_sessions(now);
        if self.config.max_sessions.is_some_and(|cap| live >= cap) {
            return Err(no_connection_for_manager(login));
        }
        self.sessions_opened += 1;
        self.peak_sessions = self.peak_sessions.max(live + 1);
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
        let quota = self.config.session_max_calls;
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
        self.calls_served += 1;
        Ok(())
    }

    /// Sessions open now: neither closed, nor past their lifetime, nor out of calls.
    pub fn live_sessions(&self, now: Timestamp) -> usize {
        let lifetime = self.config.token_lifetime;
        let quota = self.config.session_max_calls;
        self.sessions
            .values()
            .filter(|s| {
                !s.ended && now < plus(s.opened_at, lifetime) && quota.is_none_or(|q| s.calls < q)
            })
            .count()
    }

    pub fn expire_tokens(&mut self) {
        for session in self.sessions.values_mut() {
            session.ended = true;
        }
    }

    pub fn sessions_opened(&self) -> usize {
        self.sessions_opened
    }

    /// The most sessions that were open at once.
    pub fn peak_sessions(&self) -> usize {
        self.peak_sessions
    }

    /// Calls a session carried (its token accepted), whatever their outcome.
    pub fn calls_served(&self) -> usize {
        self.calls_served
    }

    // ----- messages -----
}
