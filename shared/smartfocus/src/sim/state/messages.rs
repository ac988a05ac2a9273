//! E-mail messages: lists by recency, field and period, the paged summary list (SOAP),
//! details, previews and clones.

use super::*;
use std::cmp::Ordering;

impl State {
    pub(super) fn message(&self, id: &str) -> Result<&SimMessage, Failure> {
        let id = parse_id(id, "id")?;
        self.messages
            .get(&id)
            .ok_or_else(|| Failure::not_found("message", "id"))
    }

    pub fn last_messages(&self, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        let ids: Vec<String> = self
            .messages
            .values()
            .rev()
            .filter(|m| m.kind == "email")
            .take(limit)
            .map(|m| m.id.to_string())
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn messages_by_field(&self, field: &str, value: &str, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        let pick: fn(&SimMessage) -> &str = match field.to_ascii_lowercase().as_str() {
            "name" => |m| &m.name,
            "subject" => |m| &m.subject,
            "description" => |m| &m.description,
            _ => return Err(Failure::params(format!("Unknown field {field}"), "field")),
        };
        let ids: Vec<String> = self
            .messages
            .values()
            .rev()
            .filter(|m| m.kind == "email" && pick(m) == value)
            .take(limit)
            .map(|m| m.id.to_string())
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn messages_by_period(&self, begin: &str, end: &str) -> Answer {
        let begin = parse_date(begin, &self.zone, "dateBegin")?;
        let end = parse_date(end, &self.zone, "dateEnd")?;
        let ids: Vec<String> = self
            .messages
            .values()
            .filter(|m| m.created_at >= begin && m.created_at <= end)
            .map(|m| m.id.to_string())
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn get_message(&self, id: &str) -> Answer {
        let m = self.message(id)?;
        let fields = [
            ("body", m.body.clone()),
            ("createDate", self.date(m.created_at)),
            ("description", m.description.clone()),
            ("encoding", "UTF-8".into()),
            ("from", "Shop".into()),
            ("fromEmail", "news@shop.example".into()),
            ("hotmailUnsubFlg", "false".into()),
            ("hotmailUnsubUrl", String::new()),
            ("id", m.id.to_string()),
            ("isBounceback", "false".into()),
            ("name", m.name.clone()),
            ("replyTo", "Shop".into()),
            ("replyToEmail", "reply@shop.example".into()),
            ("subject", m.subject.clone()),
            ("to", "[EMV FIELD]FIRSTNAME[EMV /FIELD]".into()),
            ("type", m.kind.clone()),
        ];
        Ok(xml::success(&xml::object("message", &fields)))
    }

    pub fn soap_accepts_rest_tokens(&self) -> bool {
        self.config.soap_accepts_rest_tokens
    }

    /// `getMessageSummaryList(token, listOptionsEntity)`: the messages `search` selects, sorted
    /// by `sortOptions` (default: newest id first), page `page` (from 1) of `pageSize` (at
    /// most `summary_max_page_size`), as a SOAP answer. The session was checked by the caller.
    pub fn message_summaries(&self, options: Option<&Node>) -> Answer {
        let options = options
            .ok_or_else(|| Failure::params("listOptionsEntity is required", "listOptionsEntity"))?;
        let page = options
            .child_text("page")
            .ok_or_else(|| Failure::params("page is required", "page"))?
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&p| p >= 1)
            .ok_or_else(|| Failure::params("page must be a number from 1", "page"))?;
        let max = self.config.summary_max_page_size.max(1);
        let page_size = match options.child_text("pageSize") {
            None => max,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| Failure::params("pageSize must be a positive number", "pageSize"))?
                .min(max),
        };
        let filter = SummaryFilter::read(options.child("search"), &self.zone)?;
        let mut matched: Vec<&SimMessage> = self
            .messages
            .values()
            .filter(|m| filter.admits(m, self.config.summary_name_search))
            .collect();
        let sorts = sort_options(options.child("sortOptions"))?;
        matched.sort_by(|a, b| {
            sorts
                .iter()
                .map(|(column, descending)| {
                    let o = compare(column, a, b);
                    if *descending { o.reverse() } else { o }
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        let total = matched.len();
        let start = (page - 1).saturating_mul(page_size).min(total);
        let end = start.saturating_add(page_size).min(total);
        let mut list = String::from("<messageSummaryList>");
        for m in &matched[start..end] {
            list.push_str(&xml::object("messageSummary", &self.summary_fields(m)));
        }
        list.push_str("</messageSummaryList>");
        let inner = format!(
            "<return>{list}<pageSize>{page_size}</pageSize><nbTotalItems>{total}</nbTotalItems>\
             <page>{page}</page><nextPage>{}</nextPage><previousPage>{}</previousPage></return>",
            end < total,
            page > 1
        );
        Ok(xml::soap_success("getMessageSummaryList", &inner))
    }

    /// The `APIMessageSummary` fields of a message, in the bean's order (S1).
    fn summary_fields(&self, m: &SimMessage) -> Vec<(&'static str, String)> {
        vec![
            ("messageId", m.id.to_string()),
            ("name", m.name.clone()),
            ("manager", self.config.login.clone()),
            ("createdDate", self.date(m.created_at)),
            ("from", "Shop".into()),
            ("fromEmail", "news@shop.example".into()),
            ("messageType", m.kind.clone()),
            ("subject", m.subject.clone()),
            ("to", "[EMV FIELD]FIRSTNAME[EMV /FIELD]".into()),
            ("replyTo", "Shop".into()),
            ("replyToEmail", "reply@shop.example".into()),
            ("isBounceBack", "false".into()),
        ]
    }

    pub fn preview(&self, id: &str, part: &str) -> Answer {
        let m = self.message(id)?;
        let (html, text) = split_body(&m.body);
        let content = match part.to_ascii_lowercase().as_str() {
            "html" => html,
            "text" => text,
            _ => return Err(Failure::params("part must be HTML or text", "part")),
        };
        Ok(xml::result("xs:string", content))
    }

    pub fn clone_message(&mut self, id: &str, new_name: &str, now: Timestamp) -> Answer {
        if new_name.trim().is_empty() {
            return Err(Failure::params("newName is required", "newName"));
        }
        let mut copy = self.message(id)?.clone();
        copy.cloned_from = Some(copy.id);
        copy.id = self.next_message_id;
        copy.name = new_name.to_owned();
        copy.created_at = now;
        self.next_message_id += 1;
        let id = copy.id;
        self.messages.insert(id, copy);
        Ok(xml::result("xs:long", &id.to_string()))
    }

    pub fn sim_messages(&self) -> Vec<SimMessage> {
        self.messages.values().cloned().collect()
    }

    // ----- uploads and members -----
}

/// `APIMessageSearchCriteria`: every criterion given must hold. Text criteria (`name` by the
/// configured [`crate::sim::NameSearch`], `subject`, `from`, `to` containing the value, ignoring
/// case) and the others compare whole values.
struct SummaryFilter {
    message_id: Option<u64>,
    name: Option<String>,
    min_created: Option<Timestamp>,
    max_created: Option<Timestamp>,
    from: Option<String>,
    kind: Option<String>,
    subject: Option<String>,
    to: Option<String>,
    bounceback: Option<bool>,
}

impl SummaryFilter {
    fn read(search: Option<&Node>, zone: &TimeZone) -> Result<Self, Failure> {
        let text = |name: &str| search.and_then(|s| s.child_text(name)).map(str::to_owned);
        let date = |name: &str| {
            text(name)
                .map(|raw| parse_date(&raw, zone, name))
                .transpose()
        };
        let kind = text("messageType");
        if let Some(k) = &kind
            && !matches!(k.as_str(), "email" | "sms")
        {
            return Err(Failure::params(
                format!("messageType must be email or sms, got {k}"),
                "messageType",
            ));
        }
        Ok(Self {
            message_id: text("messageId")
                .map(|raw| parse_id(&raw, "messageId"))
                .transpose()?,
            name: text("name"),
            min_created: date("minCreatedDate")?,
            max_created: date("maxCreatedDate")?,
            from: text("from"),
            kind,
            subject: text("subject"),
            to: text("to"),
            bounceback: text("isBounceBack").map(|b| b.trim().eq_ignore_ascii_case("true")),
        })
    }

    fn admits(&self, m: &SimMessage, names: crate::sim::NameSearch) -> bool {
        let contains = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .is_none_or(|v| field.to_lowercase().contains(&v.to_lowercase()))
        };
        self.message_id.is_none_or(|id| m.id == id)
            && self
                .name
                .as_deref()
                .is_none_or(|v| names.matches(&m.name, v))
            && self.min_created.is_none_or(|t| m.created_at >= t)
            && self.max_created.is_none_or(|t| m.created_at <= t)
            && contains("Shop", &self.from)
            && self.kind.as_deref().is_none_or(|k| m.kind == k)
            && contains(&m.subject, &self.subject)
            && contains("[EMV FIELD]FIRSTNAME[EMV /FIELD]", &self.to)
            && self.bounceback.is_none_or(|b| !b)
    }
}

/// `sortOptions/sortOption` as (column, descending); none given: newest id first.
fn sort_options(options: Option<&Node>) -> Result<Vec<(String, bool)>, Failure> {
    let mut out = Vec::new();
    for option in options
        .into_iter()
        .flat_map(|o| o.children_named("sortOption"))
    {
        let column = option
            .child_text("column")
            .unwrap_or("messageId")
            .to_owned();
        if !matches!(
            column.as_str(),
            "messageId" | "name" | "createdDate" | "messageType" | "subject"
        ) {
            return Err(Failure::params(
                format!("cannot sort by {column}"),
                "sortOptions",
            ));
        }
        let descending = match option.child_text("order").unwrap_or("ASC") {
            "ASC" => false,
            "DESC" => true,
            other => {
                return Err(Failure::params(
                    format!("order must be ASC or DESC, got {other}"),
                    "sortOptions",
                ));
            }
        };
        out.push((column, descending));
    }
    if out.is_empty() {
        out.push(("messageId".to_owned(), true));
    }
    Ok(out)
}

fn compare(column: &str, a: &SimMessage, b: &SimMessage) -> Ordering {
    match column {
        "name" => a.name.cmp(&b.name),
        "createdDate" => a.created_at.cmp(&b.created_at),
        "messageType" => a.kind.cmp(&b.kind),
        "subject" => a.subject.cmp(&b.subject),
        _ => a.id.cmp(&b.id),
    }
}
