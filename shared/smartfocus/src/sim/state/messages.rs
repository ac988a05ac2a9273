//! E-mail messages: lists by recency, field and period, details, previews and clones.

use super::*;

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
            .keys()
            .rev()
            .take(limit)
            .map(u64::to_string)
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
            .filter(|m| pick(m) == value)
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
            ("type", "email".into()),
        ];
        Ok(xml::success(&xml::object("message", &fields)))
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
