//! The account: sessions, folders and messages, lists, deliveries, the address rate window,
//! and one method per operation.

use super::filter;
use super::metrics::counters_at;
use super::soap::{ApiFault, Item, write_result};
use super::{BrontoSimConfig, SimDelivery, SimList, SimRecipient};
use espbridge_xml::{Element, Node};
use jiff::Timestamp;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;
use xxhash_rust::xxh3::xxh3_64;

/// `return` children of a response.
pub(crate) type OpResult = Result<Vec<Node>, ApiFault>;

/// Longest list name / label (reference B.4: 510 / 509).
const MAX_NAME: usize = 100;

pub(crate) struct ListState {
    pub id: String,
    pub name: String,
    pub label: String,
    pub status: String,
    /// E-mails in insertion order, as sent.
    pub members: Vec<String>,
    /// Lower-cased members, to add each address once.
    keys: HashSet<String>,
}

impl ListState {
    pub fn summary(&self) -> SimList {
        SimList {
            id: self.id.clone(),
            name: self.name.clone(),
            label: self.label.clone(),
            status: self.status.clone(),
            members: self.members.len(),
        }
    }
}

pub(crate) struct State {
    pub config: BrontoSimConfig,
    /// Live sessions: id → (last use, calls made with it).
    pub sessions: HashMap<String, (Timestamp, u32)>,
    pub logins: usize,
    /// The most sessions live at once (idle-expired and used-up ones no longer count).
    pub peak_sessions: usize,
    /// Calls a session carried (its header accepted), whatever their outcome.
    pub calls_served: usize,
    pub lists: Vec<ListState>,
    pub deliveries: Vec<SimDelivery>,
    /// addToList calls accepted within the rate window: (arrival, addresses).
    rate: VecDeque<(Instant, usize)>,
    pub rate_refusals: usize,
    next_id: u64,
}

/// A 36-character hex id whose prefix marks the object type, like the reference's.
fn hex_id(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:028x}")
}

/// A syntactically valid address: one `@`, a local part, a dotted domain, no spaces.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 100
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

impl State {
    pub fn new(config: BrontoSimConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
            logins: 0,
            peak_sessions: 0,
            calls_served: 0,
            lists: Vec::new(),
            deliveries: Vec::new(),
            rate: VecDeque::new(),
            rate_refusals: 0,
            next_id: 1,
        }
    }

    fn next(&mut self, prefix: &str) -> String {
        let n = self.next_id;
        self.next_id += 1;
        hex_id(prefix, n)
    }

    /// Whether the account holds a contact with this address (a stable hash of the lower-cased
    /// address leaves `unknown_email_share` of addresses out).
    pub fn is_contact(&self, email: &str) -> bool {
        !espbridge_sim::in_share(&email.to_lowercase(), self.config.unknown_email_share)
    }

    // ---- sessions ----

    pub fn login(&mut self, op: &Element, now: Timestamp) -> OpResult {
        if op.child_text("apiToken") != Some(self.config.api_token.as_str()) {
            return Err(ApiFault::bad_token());
        }
        // Forget sessions that can no longer be used, so the map does not grow without end.
        let idle = self.config.session_idle;
        self.sessions
            .retain(|_, (last, _)| now.duration_since(*last) <= idle);
        self.logins += 1;
        let seed = xxh3_64(format!("{}/{}", self.logins, now.as_nanosecond()).as_bytes());
        let salt = xxh3_64(&seed.to_le_bytes());
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            seed >> 32,
            (seed >> 16) & 0xffff,
            seed & 0xfff,
            0x8000 | (salt >> 48 & 0x3fff),
            salt & 0xffff_ffff_ffff
        );
        self.sessions.insert(id.clone(), (now, 0));
        self.peak_sessions = self.peak_sessions.max(self.sessions.len());
        Ok(vec![Node::text("return", id)])
    }

    /// Checks and slides a session: idle longer than `session_idle` → gone (Fault 103). A call
    /// that is the session's `session_max_calls`-th ends it: the next one answers Fault 103.
    pub fn touch_session(&mut self, id: Option<&str>, now: Timestamp) -> Result<(), ApiFault> {
        let id = id.ok_or_else(ApiFault::session)?;
        let (last, calls) = *self.sessions.get(id).ok_or_else(ApiFault::session)?;
        if now.duration_since(last) > self.config.session_idle {
            self.sessions.remove(id);
            return Err(ApiFault::session());
        }
        let calls = calls + 1;
        if self.config.session_max_calls.is_some_and(|m| calls >= m) {
            self.sessions.remove(id);
        } else {
            self.sessions.insert(id.to_owned(), (now, calls));
        }
        self.calls_served += 1;
        Ok(())
    }

    // ---- folders and messages ----

    pub fn read_message_folders(&self, op: &Element) -> OpResult {
        filter::read(
            op,
            &self.config.folders,
            |folder, c| filter::id_or_name(c, &folder.id, &folder.name),
            |folder| {
                Node::new("return")
                    .child(Node::text("id", folder.id.clone()))
                    .child(Node::text("name", folder.name.clone()))
            },
        )
    }

    pub fn read_messages(&self, op: &Element) -> OpResult {
        let content = filter::flag(op, "includeContent");
        let messages = self
            .config
            .folders
            .iter()
            .flat_map(|folder| folder.messages.iter().map(move |m| (folder, m)));
        filter::read(
            op,
            messages,
            |(folder, message), c| match c.name.as_str() {
                "messageFolderId" => Ok(Some(filter::text_equals(c, &folder.id))),
                "status" => Ok(Some(filter::text_equals(c, &message.status))),
                _ => filter::id_or_name(c, &message.id, &message.name),
            },
            |(folder, message)| {
                let node = Node::new("return")
                    .child(Node::text("id", message.id.clone()))
                    .child(Node::text("name", message.name.clone()))
                    .child(Node::text("status", message.status.clone()))
                    .child(Node::text("messageFolderId", folder.id.clone()));
                if !content {
                    return node;
                }
                node.children([("html", &message.html), ("text", &message.text)].map(
                    |(kind, body)| {
                        Node::new("content")
                            .child(Node::text("type", kind))
                            .child(Node::text("subject", message.subject.clone()))
                            .child(Node::text("content", body.clone()))
                    },
                ))
            },
        )
    }

    fn message(&self, id: &str) -> Option<&super::SeedMessage> {
        self.config
            .folders
            .iter()
            .flat_map(|f| &f.messages)
            .find(|m| m.id == id)
    }

    // ---- lists ----

    /// The input array `name` of `op`: Fault 105 when empty, 106 above `max_per_call`.
    fn items<'a>(&self, op: &'a Element, name: &'a str) -> Result<Vec<&'a Element>, ApiFault> {
        let items: Vec<&Element> = op.children_named(name).collect();
        if items.is_empty() {
            return Err(ApiFault::empty_input());
        }
        if items.len() > self.config.max_per_call {
            return Err(ApiFault::too_many(self.config.max_per_call));
        }
        Ok(items)
    }

    pub fn read_lists(&self, op: &Element) -> OpResult {
        filter::read(
            op,
            self.lists.iter().filter(|l| l.status == "active"),
            |list, c| filter::id_or_name(c, &list.id, &list.name),
            |list| {
                Node::new("return")
                    .child(Node::text("id", list.id.clone()))
                    .child(Node::text("name", list.name.clone()))
                    .child(Node::text("label", list.label.clone()))
                    .child(Node::text("activeCount", list.members.len().to_string()))
                    .child(Node::text("status", list.status.clone()))
                    .child(Node::text("visibility", "private"))
            },
        )
    }

    pub fn add_lists(&mut self, op: &Element) -> OpResult {
        let mut results = Vec::new();
        for item in self.items(op, "lists")? {
            let outcome = match (item.child_text("name"), item.child_text("label")) {
                (None, _) | (_, None) => Item::err(110, "Required fields are missing: name, label"),
                (Some(name), _) if name.chars().count() > MAX_NAME => {
                    Item::err(510, "List name is too long")
                }
                (_, Some(label)) if label.chars().count() > MAX_NAME => {
                    Item::err(509, "List label is too long")
                }
                (Some(name), _) if self.list_by_name(name).is_some() => {
                    Item::err(502, "List already exists")
                }
                (Some(name), Some(label)) => {
                    let id = self.next("0bcc03ec");
                    self.lists.push(ListState {
                        id: id.clone(),
                        name: name.to_owned(),
                        label: label.to_owned(),
                        status: "active".into(),
                        members: Vec::new(),
                        keys: HashSet::new(),
                    });
                    Item::Ok { id, is_new: true }
                }
            };
            results.push(outcome);
        }
        Ok(vec![write_result(&results)])
    }

    fn list_by_name(&self, name: &str) -> Option<usize> {
        self.lists
            .iter()
            .position(|l| l.status == "active" && l.name == name)
    }

    fn list_by_id(&self, id: &str) -> Option<usize> {
        self.lists
            .iter()
            .position(|l| l.status == "active" && l.id == id)
    }

    /// Admits `n` addresses into the sliding window, or refuses the whole call (Fault 101).
    fn admit(&mut self, n: usize) -> Result<(), ApiFault> {
        let Some(limit) = self.config.addresses_per_minute else {
            return Ok(());
        };
        let now = Instant::now();
        while self
            .rate
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.config.rate_window)
        {
            self.rate.pop_front();
        }
        let used: usize = self.rate.iter().map(|(_, count)| count).sum();
        if used + n > limit as usize {
            self.rate_refusals += 1;
            return Err(ApiFault::rate_limited());
        }
        self.rate.push_back((now, n));
        Ok(())
    }

    pub fn add_to_list(&mut self, op: &Element) -> OpResult {
        let contacts = self.items(op, "contacts")?;
        let list = op.child("list");
        let index = match (
            list.and_then(|l| l.child_text("id")),
            list.and_then(|l| l.child_text("name")),
        ) {
            (Some(id), _) => self.list_by_id(id),
            (None, Some(name)) => self.list_by_name(name),
            (None, None) => return Err(ApiFault::new(110, "Required fields are missing: list")),
        };
        self.admit(contacts.len())?;
        let Some(index) = index else {
            let results = vec![Item::err(501, "Invalid list"); contacts.len()];
            return Ok(vec![write_result(&results)]);
        };
        let mut results = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let outcome = match contact.child_text("email") {
                // A contact named only by id: the simulator keeps no contact ids.
                None => Item::err(302, "Contact does not exist"),
                // Reference B.4: 317 "email longer than 100 characters", 303 otherwise.
                Some(email) if email.len() > 100 => {
                    Item::err(317, "Email address longer than 100 characters")
                }
                Some(email) if !valid_email(email) => Item::err(303, "Invalid email address"),
                Some(email) if !self.is_contact(email) => Item::err(302, "Contact does not exist"),
                Some(email) => {
                    let list = &mut self.lists[index];
                    if list.keys.insert(email.to_lowercase()) {
                        list.members.push(email.to_owned());
                        Item::Ok {
                            id: list.id.clone(),
                            is_new: false,
                        }
                    } else {
                        Item::err(506, "Contact already on list")
                    }
                }
            };
            results.push(outcome);
        }
        Ok(vec![write_result(&results)])
    }

    pub fn delete_lists(&mut self, op: &Element, now: Timestamp) -> OpResult {
        let mut results = Vec::new();
        for item in self.items(op, "lists")? {
            let index = item.child_text("id").and_then(|id| self.list_by_id(id));
            let outcome = match index {
                None => Item::err(501, "Invalid list"),
                Some(index) => {
                    let id = self.lists[index].id.clone();
                    let pending = self.deliveries.iter().any(|d| {
                        d.start > now && d.recipients.iter().any(|r| r.kind == "list" && r.id == id)
                    });
                    if pending {
                        Item::err(505, "List has deliveries")
                    } else {
                        self.lists.remove(index);
                        Item::Ok { id, is_new: false }
                    }
                }
            };
            results.push(outcome);
        }
        Ok(vec![write_result(&results)])
    }

    // ---- deliveries ----

    pub fn add_deliveries(&mut self, op: &Element) -> OpResult {
        let mut results = Vec::new();
        for item in self.items(op, "deliveries")? {
            let outcome = match self.validate_delivery(item) {
                Err(error) => error,
                Ok(mut delivery) => {
                    delivery.id = self.next("0bcc03ed");
                    let id = delivery.id.clone();
                    tracing::debug!(audience = delivery.audience, "bronto sim delivery added");
                    self.deliveries.push(delivery);
                    Item::Ok { id, is_new: true }
                }
            };
            results.push(outcome);
        }
        Ok(vec![write_result(&results)])
    }

    /// `deleteDeliveries`: a delivery whose start is ahead is removed (it sends nothing and has
    /// no counters); an unknown id is 219; one already sent is refused with 106 (the reference
    /// names no code for it).
    pub fn delete_deliveries(&mut self, op: &Element, now: Timestamp) -> OpResult {
        let mut results = Vec::new();
        for item in self.items(op, "deliveries")? {
            let id = item.child_text("id").unwrap_or_default().to_owned();
            let index = self.deliveries.iter().position(|d| d.id == id);
            let outcome = match index {
                None => Item::err(219, "Delivery does not exist"),
                Some(i)
                    if self.deliveries[i].sent_to.is_some() || self.deliveries[i].start <= now =>
                {
                    Item::err(106, "Unable to verify parameter: the delivery was sent")
                }
                Some(i) => {
                    self.deliveries.remove(i);
                    tracing::debug!("bronto sim delivery deleted");
                    Item::Ok { id, is_new: false }
                }
            };
            results.push(outcome);
        }
        Ok(vec![write_result(&results)])
    }

    /// A delivery from a `deliveries` item, or the item error (reference B.7.3 codes).
    fn validate_delivery(&self, item: &Element) -> Result<SimDelivery, Item> {
        let start = item
            .child_text("start")
            .and_then(filter::parse_time)
            .ok_or_else(|| Item::err(201, "Invalid send date"))?;
        let message_id = item
            .child_text("messageId")
            .filter(|id| self.message(id).is_some())
            .ok_or_else(|| Item::err(205, "Delivery message not found"))?;
        let kind = item.child_text("type").unwrap_or("triggered");
        match kind {
            "triggered" | "test" => {}
            "transactional" => {
                return Err(Item::err(
                    215,
                    format!("Message not approved for transactional sending: {message_id}"),
                ));
            }
            _ => return Err(Item::err(106, "Unable to verify parameter: type")),
        }
        let from_email = item
            .child_text("fromEmail")
            .filter(|e| valid_email(e))
            .ok_or_else(|| Item::err(202, "Invalid from address"))?;
        let from_name = item
            .child_text("fromName")
            .ok_or_else(|| Item::err(213, "Invalid from name"))?;
        let reply_email = item.child_text("replyEmail");
        if reply_email.is_some_and(|e| !valid_email(e)) {
            return Err(Item::err(202, "Invalid reply address"));
        }
        if let Some(throttle) = item.child_text("throttle")
            && !throttle.parse::<u32>().is_ok_and(|t| t <= 720)
        {
            return Err(Item::err(220, "Throttle must be between 0 and 720 minutes"));
        }
        let recipients = self.recipients(item)?;
        let audience = self.audience(&recipients);
        Ok(SimDelivery {
            id: String::new(),
            message_id: message_id.to_owned(),
            start,
            kind: kind.to_owned(),
            from_email: from_email.to_owned(),
            from_name: from_name.to_owned(),
            reply_email: reply_email.map(str::to_owned),
            recipients,
            audience,
            sent_to: None,
        })
    }

    fn recipients(&self, item: &Element) -> Result<Vec<SimRecipient>, Item> {
        let mut recipients = Vec::new();
        for r in item.children_named("recipients") {
            let id = r.child_text("id").unwrap_or_default().to_owned();
            let delivery_type = r.child_text("deliveryType").unwrap_or("selected");
            if !matches!(delivery_type, "selected" | "eligible" | "ineligible") {
                return Err(Item::err(204, "Invalid recipient type"));
            }
            match r.child_text("type") {
                Some("list") if self.list_by_id(&id).is_none() => {
                    return Err(Item::err(206, "Delivery list not found"));
                }
                Some("segment") => return Err(Item::err(207, "Delivery segment not found")),
                Some("contact") if id.is_empty() => {
                    return Err(Item::err(208, "Delivery contact not found"));
                }
                Some("list" | "contact") => {}
                _ => return Err(Item::err(204, "Invalid recipient type")),
            }
            recipients.push(SimRecipient {
                kind: r.child_text("type").unwrap_or_default().to_owned(),
                id,
                delivery_type: delivery_type.to_owned(),
            });
        }
        if !recipients.iter().any(|r| r.delivery_type != "ineligible") {
            return Err(Item::err(209, "Delivery has no recipients"));
        }
        Ok(recipients)
    }

    /// Sends the deliveries whose start has come: each takes its lists' members as they are
    /// now. Called before every operation changes anything, so a delivery sees its lists as
    /// they stood at its start, as Bronto evaluates them when it sends.
    pub fn tick(&mut self, now: Timestamp) {
        let due: Vec<usize> = (0..self.deliveries.len())
            .filter(|&i| self.deliveries[i].sent_to.is_none() && self.deliveries[i].start <= now)
            .collect();
        for i in due {
            let mut to: Vec<String> = self
                .selected(&self.deliveries[i].recipients)
                .into_iter()
                .collect();
            to.sort_unstable();
            self.deliveries[i].sent_to = Some(to);
        }
    }

    /// The deliveries sent so far, each named after its first selected list.
    pub fn sim_sends(&self) -> Vec<espbridge_esp_kit::SimSend> {
        self.deliveries
            .iter()
            .filter_map(|d| {
                let list = d
                    .recipients
                    .iter()
                    .find(|r| r.kind == "list" && r.delivery_type != "ineligible")
                    .and_then(|r| self.list_by_id(&r.id))
                    .map(|i| self.lists[i].name.clone())
                    .unwrap_or_default();
                Some(espbridge_esp_kit::SimSend {
                    name: list,
                    send_at: d.start,
                    recipients: d.sent_to.clone()?,
                })
            })
            .collect()
    }

    /// Distinct (lower-cased) addresses of the selected lists not on an excluded list.
    fn selected(&self, recipients: &[SimRecipient]) -> HashSet<String> {
        let members = |r: &SimRecipient| {
            self.list_by_id(&r.id)
                .map(|i| self.lists[i].keys.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let excluded: HashSet<String> = recipients
            .iter()
            .filter(|r| r.kind == "list" && r.delivery_type == "ineligible")
            .flat_map(members)
            .collect();
        recipients
            .iter()
            .filter(|r| r.kind == "list" && r.delivery_type != "ineligible")
            .flat_map(members)
            .filter(|m| !excluded.contains(m))
            .collect()
    }

    /// Distinct addresses of the selected lists not on an excluded list, plus contacts.
    fn audience(&self, recipients: &[SimRecipient]) -> usize {
        let contacts = recipients
            .iter()
            .filter(|r| r.kind == "contact" && r.delivery_type != "ineligible")
            .count();
        self.selected(recipients).len() + contacts
    }

    pub fn read_deliveries(&self, op: &Element, now: Timestamp) -> OpResult {
        let with_recipients = filter::flag(op, "includeRecipients");
        let status = |d: &SimDelivery| if d.start > now { "unsent" } else { "sent" };
        filter::read(
            op,
            &self.deliveries,
            |delivery, c| match c.name.as_str() {
                "id" => Ok(Some(filter::text_equals(c, &delivery.id))),
                "messageId" => Ok(Some(filter::text_equals(c, &delivery.message_id))),
                "status" => Ok(Some(filter::text_equals(c, status(delivery)))),
                "start" => filter::date_matches(c, delivery.start).map(Some),
                _ => Ok(None),
            },
            |delivery| delivery_node(delivery, status(delivery), with_recipients, now),
        )
    }

    pub fn lists(&self) -> Vec<SimList> {
        self.lists.iter().map(ListState::summary).collect()
    }

    pub fn list_members(&self, list_id: &str) -> Vec<String> {
        self.lists
            .iter()
            .find(|l| l.id == list_id)
            .map(|l| l.members.clone())
            .unwrap_or_default()
    }
}

/// A `deliveryObject` in WSDL element order.
fn delivery_node(d: &SimDelivery, status: &str, with_recipients: bool, now: Timestamp) -> Node {
    let c = counters_at(&d.id, d.audience, d.start, now);
    let mut node = Node::new("return")
        .child(Node::text("id", d.id.clone()))
        .child(Node::text(
            "start",
            d.start.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ))
        .child(Node::text("messageId", d.message_id.clone()))
        .child(Node::text("status", status))
        .child(Node::text("type", d.kind.clone()))
        .child(Node::text("fromEmail", d.from_email.clone()))
        .child(Node::text("fromName", d.from_name.clone()));
    if let Some(reply) = &d.reply_email {
        node = node.child(Node::text("replyEmail", reply.clone()));
    }
    if with_recipients {
        node = node.children(d.recipients.iter().map(|r| {
            Node::new("recipients")
                .child(Node::text("deliveryType", r.delivery_type.clone()))
                .child(Node::text("id", r.id.clone()))
                .child(Node::text("type", r.kind.clone()))
        }));
    }
    node.children(
        c.wire_fields()
            .into_iter()
            .map(|(name, value)| Node::text(name, value)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_syntax() {
        assert!(valid_email("a.b@example.org"));
        for bad in [
            "",
            "a",
            "a@b",
            "@b.org",
            "a@@b.org",
            "a b@c.org",
            "a@b.org.",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn about_one_percent_of_addresses_are_not_contacts() {
        let state = State::new(BrontoSimConfig::default());
        let unknown = (0..20_000)
            .filter(|i| !state.is_contact(&format!("c{i}@example.org")))
            .count();
        assert!((100..300).contains(&unknown), "{unknown}");
        assert_eq!(
            state.is_contact("C1@Example.org"),
            state.is_contact("c1@example.org")
        );
    }

    #[test]
    fn ids_are_36_hex_characters() {
        let id = hex_id("0bcc03ec", 7);
        assert_eq!(id.len(), 36);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
