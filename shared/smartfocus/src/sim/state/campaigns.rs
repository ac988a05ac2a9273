//! Campaigns: create, post, status, lookups and the snapshot report.

use super::*;

pub(super) struct Campaign {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) send_date_raw: String,
    pub(super) send_at: Timestamp,
    pub(super) message_id: u64,
    pub(super) segment_id: u64,
    pub(super) notification: bool,
    pub(super) post_click_tracking: bool,
    pub(super) dedup: bool,
    pub(super) posted: bool,
    /// The segment's count at post time.
    pub(super) selected: u64,
    /// The customer ids the send went to: the segment's selection at the send date, frozen by
    /// [`State::tick`]; `None` before it.
    pub(super) recipients: Option<Vec<String>>,
}

impl Campaign {
    /// `nbSelected`: the count at post time until the send, then the members the send went to.
    fn selected_now(&self) -> u64 {
        self.recipients
            .as_ref()
            .map_or(self.selected, |r| r.len() as u64)
    }
}

impl State {
    /// `args`: name, desc, sendDate, messageId, mailinglistId, notifProgress,
    /// postClickTracking, emaildedupflg.
    pub fn create_campaign(&mut self, args: [Option<&str>; 8], now: Timestamp) -> Answer {
        let [
            name,
            desc,
            send_date,
            message_id,
            segment_id,
            notif,
            pct,
            dedup,
        ] = args;
        let name = name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Failure::params("name is required", "name"))?;
        let send_date =
            send_date.ok_or_else(|| Failure::params("sendDate is required", "sendDate"))?;
        let send_at = parse_date(send_date, &self.zone, "sendDate")?;
        if send_at < plus(now, self.config.min_send_lead) {
            return Err(Failure::params("sendDate is too early", "sendDate"));
        }
        let message_id = parse_id(message_id.unwrap_or_default(), "messageId")?;
        if !self.messages.contains_key(&message_id) {
            return Err(Failure::not_found("message", "messageId"));
        }
        let segment_id = parse_id(segment_id.unwrap_or_default(), "mailinglistId")?;
        if !self.segments.contains_key(&segment_id) {
            return Err(Failure::not_found("segment", "mailinglistId"));
        }
        let flag = |v: Option<&str>, field: &str| match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(Failure::params(
                format!("{field} must be true or false"),
                field,
            )),
        };
        let campaign = Campaign {
            id: self.next_campaign_id,
            name: name.to_owned(),
            description: desc.unwrap_or_default().to_owned(),
            send_date_raw: send_date.to_owned(),
            send_at,
            message_id,
            segment_id,
            notification: flag(notif, "notifProgress")?,
            post_click_tracking: flag(pct, "postClickTracking")?,
            dedup: flag(dedup, "emaildedupflg")?,
            posted: false,
            selected: 0,
            recipients: None,
        };
        self.next_campaign_id += 1;
        let id = campaign.id;
        self.campaigns.insert(id, campaign);
        Ok(xml::result("xs:long", &id.to_string()))
    }

    pub(super) fn campaign(&self, id: &str) -> Result<&Campaign, Failure> {
        let id = parse_id(id, "id")?;
        self.campaigns
            .get(&id)
            .ok_or_else(|| Failure::not_found("campaign", "id"))
    }

    pub fn post_campaign(&mut self, id: &str, now: Timestamp) -> Answer {
        self.tick(now);
        let campaign = self.campaign(id)?;
        if campaign.posted {
            return Err(Failure::new(
                "The campaign is not editable",
                "id",
                "CAMPAIGN_NOT_EDITABLE",
            ));
        }
        let (cid, segment_id) = (campaign.id, campaign.segment_id);
        let selected = match self.segments.get(&segment_id) {
            Some(segment) => self.count_of(segment),
            None => return Err(Failure::not_found("segment", "mailinglistId")),
        };
        if let Some(campaign) = self.campaigns.get_mut(&cid) {
            campaign.posted = true;
            campaign.selected = selected;
        }
        self.posts += 1;
        Ok(xml::result("xs:boolean", "true"))
    }

    /// SOAP `unpostCampaign`: a posted campaign whose send date is ahead goes back to
    /// `EDITABLE` (it will not send and reports nothing); one that is not posted, or whose send
    /// date has come, is refused as not editable's counterpart, `CAMPAIGN_NOT_POSTED` /
    /// `CAMPAIGN_ALREADY_SENT` (status names invented: the reference gives none).
    pub fn unpost_campaign(&mut self, id: &str, now: Timestamp) -> Answer {
        self.tick(now);
        let campaign = self.campaign(id)?;
        if !campaign.posted {
            return Err(Failure::new(
                "The campaign is not posted",
                "id",
                "CAMPAIGN_NOT_POSTED",
            ));
        }
        if campaign.recipients.is_some() || campaign.send_at <= now {
            return Err(Failure::new(
                "The campaign has been sent",
                "id",
                "CAMPAIGN_ALREADY_SENT",
            ));
        }
        let cid = campaign.id;
        if let Some(c) = self.campaigns.get_mut(&cid) {
            c.posted = false;
            c.selected = 0;
        }
        self.unposts += 1;
        Ok(xml::soap_success(
            "unpostCampaign",
            r#"<return xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:boolean" xmlns:xs="http://www.w3.org/2001/XMLSchema">true</return>"#,
        ))
    }

    pub fn unpost_count(&self) -> usize {
        self.unposts
    }

    pub(super) fn status_of(c: &Campaign, now: Timestamp) -> &'static str {
        if !c.posted {
            "EDITABLE"
        } else if now < c.send_at {
            "QUEUED"
        } else if now < plus(c.send_at, SignedDuration::from_hours(1)) {
            "RUNNING"
        } else {
            "COMPLETED"
        }
    }

    pub fn get_campaign(&self, id: &str, now: Timestamp) -> Answer {
        let c = self.campaign(id)?;
        let status = Self::status_of(c, now);
        let fields = [
            ("deliverySpeed", "0".into()),
            ("description", c.description.clone()),
            ("emaildedupflg", bool_text(c.dedup)),
            ("format", "OTHER".into()),
            ("id", c.id.to_string()),
            ("lifeStatus", "TRACKING".into()),
            ("mailingListId", c.segment_id.to_string()),
            ("messageId", c.message_id.to_string()),
            ("name", c.name.clone()),
            ("notification", bool_text(c.notification)),
            ("postClickTracking", bool_text(c.post_click_tracking)),
            ("sendDate", self.date(c.send_at)),
            ("status", status.into()),
            ("strategy", "OTHER".into()),
            ("target", "OTHER".into()),
            ("valid", status.into()),
            ("analytics", "false".into()),
        ];
        Ok(xml::success(&xml::object("campaign", &fields)))
    }

    pub fn campaign_status(&self, id: &str, now: Timestamp) -> Answer {
        let c = self.campaign(id)?;
        let status = Self::status_of(c, now);
        let mixed = format!("{}{}", &status[..1], status[1..].to_ascii_lowercase());
        Ok(xml::result("xs:string", &mixed))
    }

    pub fn last_campaigns(&self, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        let ids: Vec<String> = self
            .campaigns
            .keys()
            .rev()
            .take(limit)
            .map(u64::to_string)
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn campaigns_by_field(&self, field: &str, value: &str, limit: &str) -> Answer {
        let limit = parse_limit(limit)?;
        if !field.eq_ignore_ascii_case("name") {
            return Err(Failure::params(format!("Unknown field {field}"), "field"));
        }
        let ids: Vec<String> = self
            .campaigns
            .values()
            .rev()
            .filter(|c| c.name == value)
            .take(limit)
            .map(|c| c.id.to_string())
            .collect();
        Ok(xml::results("xs:long", ids.iter().map(String::as_str)))
    }

    pub fn snapshot(&self, id: &str, now: Timestamp) -> Answer {
        let c = self.campaign(id)?;
        let elapsed = if c.posted {
            now.duration_since(c.send_at).as_secs_f64()
        } else {
            -1.0
        };
        let s = Snapshot::at(c.id, c.selected_now(), elapsed);
        let end = if now > c.send_at { now } else { c.send_at };
        let fields = [
            ("beginDate", self.date(c.send_at)),
            ("campaignId", c.id.to_string()),
            ("endDate", self.date(end)),
            ("nbBounce", s.bounce.to_string()),
            ("nbComplaint", s.complaint.to_string()),
            ("nbConversion", s.conversion.to_string()),
            ("nbDelivered", s.delivered.to_string()),
            ("nbFiltered", s.filtered.to_string()),
            ("nbHardBounce", s.hard_bounce.to_string()),
            ("nbSelected", s.selected.to_string()),
            ("nbSoftBounce", s.soft_bounce.to_string()),
            ("nbUniqueClick", s.unique_click.to_string()),
            ("nbUniqueOpen", s.unique_open.to_string()),
            ("nbUnsubscribe", s.unsubscribe.to_string()),
        ];
        Ok(xml::success(&xml::object("campaignSnapshot", &fields)))
    }

    pub fn post_count(&self) -> usize {
        self.posts
    }

    pub fn sim_campaigns(&self, now: Timestamp) -> Vec<SimCampaign> {
        self.campaigns
            .values()
            .map(|c| SimCampaign {
                id: c.id,
                name: c.name.clone(),
                description: c.description.clone(),
                send_date_raw: c.send_date_raw.clone(),
                send_at: c.send_at,
                message_id: c.message_id,
                segment_id: c.segment_id,
                status: Self::status_of(c, now).into(),
                selected: c.selected_now(),
                recipients: c.recipients.clone(),
            })
            .collect()
    }

    /// Freezes a posted campaign's audience at its send date: the members its segment selects
    /// then (none when the segment is gone). The simulator sends to whatever the segment
    /// selects; it drops no member by itself (a segment without an e-mail criterion sends to
    /// members without e-mail too, which is how a missing criterion shows).
    pub(super) fn freeze_send(&mut self, id: u64) {
        let Some(segment_id) = self.campaigns.get(&id).map(|c| c.segment_id) else {
            return;
        };
        let recipients = self
            .segments
            .get(&segment_id)
            .map(|s| self.selection(s))
            .unwrap_or_default();
        if let Some(c) = self.campaigns.get_mut(&id) {
            c.recipients = Some(recipients);
        }
    }

    /// One send per campaign whose send date has come (see [`State::tick`]).
    pub fn sim_sends(&self) -> Vec<espbridge_esp_kit::SimSend> {
        self.campaigns
            .values()
            .filter_map(|c| {
                Some(espbridge_esp_kit::SimSend {
                    name: c.name.clone(),
                    send_at: c.send_at,
                    recipients: c.recipients.clone()?,
                })
            })
            .collect()
    }
}
